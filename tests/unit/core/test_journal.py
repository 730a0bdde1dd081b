"""The SQLite journal file: WAL and full sync, durable before return, visible to other processes.

Behaviour shared with PostgreSQL is in tests/unit/journal/test_contract.py."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator import errors, records
from orchestrator.adapters import journaldb
from orchestrator.journal import store

S = records.RunState


def _run(run_id: str = "d-1", at: float = 100.0, state: records.RunState = S.PLANNED) -> records.RunRecord:
    return records.RunRecord(
        run_id=run_id,
        drill_name="d",
        drill_path="/x/d.yaml",
        mode=records.RunMode.NO_AUTOMATION,
        target_key="sandbox:/tmp/x",
        state=state,
        created_at=at,
        updated_at=at,
        pid=1,
        host="h",
        deadline_at=at + 60,
        definition={"k": 1},
        experiment={"title": "t"},
    )


def _suspension(run_id: str = "d-1") -> records.SuspensionRecord:
    return records.SuspensionRecord(
        run_id=run_id,
        policy="p",
        kind="sandbox-autorestart",
        target_key="sandbox:/tmp/x",
        prior={"autorestart": True},
        deadline_at=160.0,
        state=records.SuspensionState.INTENDED,
        updated_at=101.0,
    )


def _event(run_id: str = "d-1", name: str = "x") -> records.Event:
    return records.Event(run_id=run_id, at=101.0, kind=records.EventKind.ACTION, name=name, actor="drill")


def test_wal_and_full_sync(tmp_path: Path) -> None:
    db = journaldb.JournalDb(tmp_path / "j.db", read_only=False)
    try:
        with db._engine.connect() as conn:
            mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
            sync = conn.exec_driver_sql("PRAGMA synchronous").scalar()
    finally:
        db.close()
    assert mode == "wal"
    assert sync == 2  # FULL


def test_intent_is_visible_to_another_process_before_the_call_returns(tmp_path: Path) -> None:
    """Write-ahead: once record_intent returns, a fresh process (as after SIGKILL) reads the prior state."""
    db = tmp_path / "j.db"
    journal = store.open_journal(db)
    journal.create_run(_run())
    journal.record_intent(_suspension(), _event(name="suspend.intent"))
    reader = (
        "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); "
        "print(c.execute('SELECT state, prior FROM suspensions').fetchall()); c.close()"
    )
    out = subprocess.run([sys.executable, "-c", reader, str(db)], capture_output=True, text=True, check=True).stdout
    journal.close()
    assert out.strip() == str([("intended", json.dumps({"autorestart": True}, sort_keys=True))])


def test_update_suspension_and_unrestored_filter(tmp_path: Path) -> None:
    journal = store.open_journal(tmp_path / "j.db")
    journal.create_run(_run())
    journal.record_intent(_suspension(), _event())
    assert [s.state for s in journal.suspensions(unrestored=True)] == [records.SuspensionState.INTENDED]
    journal.update_suspension("d-1", "p", records.SuspensionState.RESTORED, at=150.0, detail="ok", event=_event())
    assert journal.suspensions(unrestored=True) == []
    [done] = journal.suspensions("d-1")
    assert done.state is records.SuspensionState.RESTORED and done.prior == {"autorestart": True}
    journal.close()


def test_a_failed_transaction_writes_nothing(tmp_path: Path) -> None:
    journal = store.open_journal(tmp_path / "j.db")
    journal.create_run(_run())
    before = len(journal.events("d-1"))
    # A suspension for a run that does not exist is refused: neither row nor event lands.
    with pytest.raises(errors.JournalError):
        journal.record_intent(_suspension("nope"), _event("d-1"))
    assert len(journal.events("d-1")) == before
    assert journal.suspensions() == []
    journal.close()


def test_resolve_run_by_prefix_latest_and_active(tmp_path: Path) -> None:
    journal = store.open_journal(tmp_path / "j.db")
    journal.create_run(_run("alpha-1", at=100.0))
    journal.create_run(_run("alpha-2", at=200.0))
    journal.create_run(_run("beta-1", at=300.0))
    assert journal.resolve_run("beta").run_id == "beta-1"
    assert journal.resolve_run("latest").run_id == "beta-1"
    with pytest.raises(errors.RunNotFoundError, match="matches 2 runs"):
        journal.resolve_run("alpha")
    with pytest.raises(errors.RunNotFoundError, match="no run 'zeta'"):
        journal.resolve_run("zeta")
    with pytest.raises(errors.RunNotFoundError, match="no run is in progress"):
        journal.resolve_run(None)
    journal.set_state("alpha-2", S.RESPONDING, actor="drill", trigger="t", at=250.0)
    assert journal.resolve_run("active").run_id == "alpha-2"
    journal.close()


def test_events_filter_by_kind_and_sequence_and_export(tmp_path: Path) -> None:
    journal = store.open_journal(tmp_path / "j.db")
    journal.create_run(_run())
    seq = journal.append(
        records.Event(run_id="d-1", at=102.0, kind=records.EventKind.COMMAND, name="ack", actor="alice")
    )
    journal.append(_event())
    commands = journal.events("d-1", kinds=[records.EventKind.COMMAND])
    assert [(c.seq, c.name, c.actor) for c in commands] == [(seq, "ack", "alice")]
    assert journal.events("d-1", after_seq=seq, kinds=[records.EventKind.COMMAND]) == []
    out = tmp_path / "j.jsonl"
    journal.export_jsonl("d-1", out)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["kind"] for line in lines] == ["transition", "command", "action"]
    for line in lines:  # every event carries the structured fields, exported as they are
        assert {"name", "trigger", "expected", "actual", "duration_s", "actor", "at"} <= set(line)
    journal.close()


def test_unopenable_journal_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(errors.JournalError, match="cannot open the journal"):
        store.open_journal(tmp_path / "file" / "j.db")


def test_second_connection_sees_wal_writes(tmp_path: Path) -> None:
    journal = store.open_journal(tmp_path / "j.db")
    journal.create_run(_run())
    other = sqlite3.connect(tmp_path / "j.db")
    try:
        assert other.execute("SELECT COUNT(*) FROM runs").fetchone() == (1,)
    finally:
        other.close()
        journal.close()
