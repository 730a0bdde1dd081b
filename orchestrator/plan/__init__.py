"""Planning: what a run would do, computed by reading only."""
