"""Read-only queries over the archive index for the cross-drill reports (skill retention, auto-recovery coverage).

Each query reads only the columns a report needs, in one read transaction, and returns plain dicts
keyed by column name; ``orchestrator.archive.retention`` and ``orchestrator.archive.coverage`` decide
what they mean. Nothing here writes.
"""

from __future__ import annotations

from typing import Any

from orchestrator.adapters import archivedb

Row = dict[str, Any]

_STARTED_BY = "r.mode = ? AND r.started_s IS NOT NULL AND r.started_s <= ?"


def _runs_with_timing(index: archivedb.IndexDb, *, mode: str, timing: str, until_s: float) -> list[Row]:
    """Runs of one mode started at or before ``until_s``, each with one of its timings (or None)."""
    query = (
        "SELECT r.run_id, r.failure_mode, r.started_s, r.started_at, r.outcome, t.seconds, t.censored,"
        f" t.lower_bound_s FROM {archivedb.RUNS} r"
        f" LEFT OUTER JOIN {archivedb.TIMINGS} t ON t.run_id = r.run_id AND t.name = ?"
        f" WHERE {_STARTED_BY} ORDER BY r.started_s, r.run_id"
    )
    with index._read("read") as tx:
        return tx.rows(query, [timing, mode, until_s])


def human_runs(index: archivedb.IndexDb, *, until_s: float) -> list[Row]:
    """``no-automation`` runs started at or before ``until_s``, oldest first, with their ``mitigate`` timing."""
    return _runs_with_timing(index, mode="no-automation", timing="mitigate", until_s=until_s)


def verification_runs(index: archivedb.IndexDb, *, until_s: float) -> list[Row]:
    """``auto-recovery`` runs started at or before ``until_s``, oldest first, with their ``recover`` timing."""
    return _runs_with_timing(index, mode="auto-recovery", timing="recover", until_s=until_s)


def human_participants(index: archivedb.IndexDb, *, until_s: float) -> list[Row]:
    """(run_id, name, role, hints) of every participant of a ``no-automation`` run started by ``until_s``."""
    query = (
        f"SELECT p.run_id, p.name, p.role, p.hints FROM {archivedb.PARTICIPANTS} p"
        f" JOIN {archivedb.RUNS} r ON r.run_id = p.run_id"
        f" WHERE {_STARTED_BY} ORDER BY p.run_id, p.name"
    )
    with index._read("read") as tx:
        return tx.rows(query, ["no-automation", until_s])
