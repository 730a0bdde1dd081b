"""What every command needs: paths and the journal."""

from __future__ import annotations

import argparse

from orchestrator import settings
from orchestrator.journal import base as journal_base
from orchestrator.journal import store


def paths(args: argparse.Namespace) -> settings.Paths:
    return settings.paths_from_env(home=getattr(args, "home", None), archive=getattr(args, "archive", None))


def journal(args: argparse.Namespace, read_only: bool = False) -> journal_base.JournalStore:
    """The journal at ``$DRILL_JOURNAL_URL``, else ``<home>/journal.db``; ``read_only`` for commands that only look."""
    return store.open_journal(store.journal_url(paths(args).home), read_only=read_only)
