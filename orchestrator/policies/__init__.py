"""Policy suspenders: each knows how to snapshot, suspend, verify and restore one kind of automation."""
