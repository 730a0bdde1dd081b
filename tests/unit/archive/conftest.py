"""Archive fixtures: a small finished run in a real journal, and the index on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator import records
from orchestrator.journal import base as journal_base
from orchestrator.journal import store
from tests.unit.journal.conftest import pg_server_url, pg_url

__all__ = ["pg_server_url", "pg_url"]

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z

DEFINITION = {
    "apiVersion": "drill.dev/v1alpha1",
    "kind": "Drill",
    "metadata": {"name": "sandbox-no-automation", "description": "the service dies"},
    "spec": {
        "mode": "no-automation",
        "failureMode": "sandbox/service-down",
        "participants": [{"name": "alice", "role": "responder"}, {"name": "bob", "role": "facilitator"}],
        "expectations": {"acknowledge": "2m", "resolve": "15m"},
    },
}


def finished_run(journal: journal_base.JournalStore, run_id: str, *, at: float = T0) -> str:
    """A done no-automation run with a hint: what finish_run leaves in the journal."""
    journal.create_run(
        records.RunRecord(
            run_id=run_id,
            drill_name="sandbox-no-automation",
            drill_path="drills/examples/sandbox-no-automation.yaml",
            mode=records.RunMode.NO_AUTOMATION,
            target_key="sandbox:/tmp/x",
            state=records.RunState.DONE,
            created_at=at,
            updated_at=at + 600,
            pid=1,
            host="h",
            deadline_at=at + 3600,
            definition=DEFINITION,
            experiment={},
        )
    )
    tl = records.TimelineKind
    for offset, kind, actor in (
        (10.0, tl.FAULT_ACTIVE, "drill"),
        (10.0, tl.NOTIFIED, "drill"),
        (40.0, tl.ACKNOWLEDGED, "alice"),
        (60.0, tl.HINT, "alice"),
        (200.0, tl.DIAGNOSED, "alice"),
        (300.0, tl.STEADY_STATE_RESTORED, "drill"),
        (320.0, tl.RESOLVED, "alice"),
        (321.0, tl.ROLLED_BACK, "drill"),
    ):
        journal.append(records.timeline(run_id, at + offset, kind, actor=actor))
    journal.finish(run_id, outcome=records.Outcome.WITH_HINTS, report_dir=None, at=at + 330, token=None)
    return run_id


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[journal_base.JournalStore]:
    opened = store.open_journal(tmp_path / "journal.db")
    yield opened
    opened.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def index_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where the index goes: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "index.db")
    url: str = request.getfixturevalue("pg_url")
    return url
