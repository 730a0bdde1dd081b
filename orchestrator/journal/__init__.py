"""The run journal: append-only, write-ahead, on disk step by step."""
