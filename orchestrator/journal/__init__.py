"""The run journal: append-only, write-ahead, on disk step by step.

``base.JournalStore`` is the protocol; ``store.open_journal`` opens one (SQLite file or PostgreSQL URL).
Importing this package imports no database driver; ``store`` does.
"""
