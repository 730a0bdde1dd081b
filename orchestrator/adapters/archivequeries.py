"""Read-only queries over the archive index for the cross-drill reports (skill retention, auto-recovery coverage).

Each query reads only the columns a report needs, in one read transaction, and returns plain dicts
keyed by column name; ``orchestrator.archive.retention`` and ``orchestrator.archive.coverage`` decide
what they mean. Nothing here writes.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from orchestrator.adapters import archivedb

Row = dict[str, Any]

_runs = archivedb.runs
_participants = archivedb.participants
_timings = archivedb.timings


def _runs_with_timing(index: archivedb.IndexDb, *, mode: str, timing: str, until_s: float) -> list[Row]:
    """Runs of one mode started at or before ``until_s``, each with one of its timings (or None)."""
    joined = _runs.outerjoin(_timings, sa.and_(_timings.c.run_id == _runs.c.run_id, _timings.c.name == timing))
    query = (
        sa.select(
            _runs.c.run_id,
            _runs.c.failure_mode,
            _runs.c.started_s,
            _runs.c.started_at,
            _runs.c.outcome,
            _timings.c.seconds,
            _timings.c.censored,
            _timings.c.lower_bound_s,
        )
        .select_from(joined)
        .where(_runs.c.mode == mode, _runs.c.started_s.is_not(None), _runs.c.started_s <= until_s)
        .order_by(_runs.c.started_s, _runs.c.run_id)
    )
    with index._read("read") as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def human_runs(index: archivedb.IndexDb, *, until_s: float) -> list[Row]:
    """``no-automation`` runs started at or before ``until_s``, oldest first, with their ``mitigate`` timing."""
    return _runs_with_timing(index, mode="no-automation", timing="mitigate", until_s=until_s)


def verification_runs(index: archivedb.IndexDb, *, until_s: float) -> list[Row]:
    """``auto-recovery`` runs started at or before ``until_s``, oldest first, with their ``recover`` timing."""
    return _runs_with_timing(index, mode="auto-recovery", timing="recover", until_s=until_s)


def human_participants(index: archivedb.IndexDb, *, until_s: float) -> list[Row]:
    """(run_id, name, role, hints) of every participant of a ``no-automation`` run started by ``until_s``."""
    query = (
        sa.select(_participants.c.run_id, _participants.c.name, _participants.c.role, _participants.c.hints)
        .select_from(_participants.join(_runs, _runs.c.run_id == _participants.c.run_id))
        .where(_runs.c.mode == "no-automation", _runs.c.started_s.is_not(None), _runs.c.started_s <= until_s)
        .order_by(_participants.c.run_id, _participants.c.name)
    )
    with index._read("read") as conn:
        return [dict(r._mapping) for r in conn.execute(query)]
