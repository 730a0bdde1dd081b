"""What every command needs: paths and the journal."""

from __future__ import annotations

import argparse

from orchestrator import settings
from orchestrator.journal import sqlite


def paths(args: argparse.Namespace) -> settings.Paths:
    return settings.paths_from_env(home=getattr(args, "home", None), archive=getattr(args, "archive", None))


def journal(args: argparse.Namespace) -> sqlite.SqliteJournal:
    return sqlite.SqliteJournal(paths(args).journal_db)
