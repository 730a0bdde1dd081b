"""Restoring suspended automation: from the running drill, from the journal after a crash, or from markers."""
