"""The SQLite journal file: WAL and full sync, durable before return, visible to other processes.

Behaviour shared with PostgreSQL is in tests/unit/journal/test_contract.py."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import pytest

from orchestrator import errors, records
from orchestrator.adapters import journaldb
from orchestrator.journal import store
from tests.conftest import REPO
from tests.unit.journal.builders import make_run

S = records.RunState


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
        with db._db.transaction(write=False) as tx:  # a pooled connection, as every statement gets
            mode = tx.scalar("PRAGMA journal_mode")
            sync = tx.scalar("PRAGMA synchronous")
    finally:
        db.close()
    assert mode == "wal"
    assert sync == 2  # FULL


def test_intent_is_visible_to_another_process_before_the_call_returns(tmp_path: Path) -> None:
    """Write-ahead: once record_intent returns, a fresh process (as after SIGKILL) reads the prior state."""
    db = tmp_path / "j.db"
    journal = store.open_journal(db)
    journal.create_run(make_run())
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
    journal.create_run(make_run())
    journal.record_intent(_suspension(), _event())
    assert [s.state for s in journal.suspensions(unrestored=True)] == [records.SuspensionState.INTENDED]
    journal.update_suspension("d-1", "p", records.SuspensionState.RESTORED, at=150.0, detail="ok", event=_event())
    assert journal.suspensions(unrestored=True) == []
    [done] = journal.suspensions("d-1")
    assert done.state is records.SuspensionState.RESTORED and done.prior == {"autorestart": True}
    journal.close()


def test_a_failed_transaction_writes_nothing(tmp_path: Path) -> None:
    journal = store.open_journal(tmp_path / "j.db")
    journal.create_run(make_run())
    before = len(journal.events("d-1"))
    # A suspension for a run that does not exist is refused: neither row nor event lands.
    with pytest.raises(errors.JournalError):
        journal.record_intent(_suspension("nope"), _event("d-1"))
    assert len(journal.events("d-1")) == before
    assert journal.suspensions() == []
    journal.close()


def test_resolve_run_by_prefix_latest_and_active(tmp_path: Path) -> None:
    journal = store.open_journal(tmp_path / "j.db")
    journal.create_run(make_run("alpha-1", at=100.0))
    journal.create_run(make_run("alpha-2", at=200.0))
    journal.create_run(make_run("beta-1", at=300.0))
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
    journal.create_run(make_run())
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
    journal.create_run(make_run())
    other = sqlite3.connect(tmp_path / "j.db")
    try:
        assert other.execute("SELECT COUNT(*) FROM runs").fetchone() == (1,)
    finally:
        other.close()
        journal.close()


# The first journal layout (drill 0.1, no schema_version table): kept verbatim as the migration fixture.
V1_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    drill_name TEXT NOT NULL,
    drill_path TEXT NOT NULL,
    mode TEXT NOT NULL,
    target_key TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    deadline_at REAL NOT NULL,
    definition TEXT NOT NULL,
    experiment TEXT NOT NULL,
    outcome TEXT,
    report_dir TEXT
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    actor TEXT NOT NULL,
    trigger TEXT NOT NULL,
    expected TEXT NOT NULL,
    actual TEXT NOT NULL,
    duration_s REAL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_run ON events(run_id, seq);
CREATE TABLE IF NOT EXISTS suspensions (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    policy TEXT NOT NULL,
    kind TEXT NOT NULL,
    target_key TEXT NOT NULL,
    prior TEXT NOT NULL,
    deadline_at REAL NOT NULL,
    state TEXT NOT NULL,
    updated_at REAL NOT NULL,
    detail TEXT NOT NULL,
    PRIMARY KEY (run_id, policy)
);
"""


def _v1_journal(db: Path) -> None:
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(V1_SCHEMA)
        conn.execute(
            "INSERT INTO runs VALUES ('old-1', 'd', '/x/d.yaml', 'chaos', 'sandbox:/x', 'responding', 10.0, 20.0,"
            " 7, 'h', 70.0, '{}', '{}', NULL, NULL)"
        )
        conn.execute(
            "INSERT INTO events (run_id, at, kind, name, actor, trigger, expected, actual, duration_s, data)"
            " VALUES ('old-1', 11.0, 'command', 'ack', 'alice', '', '', '', NULL, '{}')"
        )
        conn.execute(
            "INSERT INTO suspensions VALUES ('old-1', 'p', 'sandbox-autorestart', 'sandbox:/x', '{\"a\": 1}', 70.0,"
            " 'suspended', 12.0, '')"
        )


def test_a_v1_journal_is_migrated_in_place(tmp_path: Path) -> None:
    db = tmp_path / "journal.db"
    _v1_journal(db)
    journal = store.open_journal(db)
    try:
        run = journal.get_run("old-1")
        assert (run.mode, run.owner, run.token, run.heartbeat_at) == (records.RunMode.CHAOS, "", 1, 20.0)
        assert journal.take_commands("old-1", token=1) == []  # handled by the old process: never replayed
        [suspension] = journal.suspensions(unrestored=True)
        assert suspension.prior == {"a": 1} and suspension.prior_known
        journal.set_state("old-1", S.RESTORING, actor="drill", trigger="t", at=30.0, token=1)
        assert journal.lock_target("sandbox:/x", run_id="old-1", at=30.0) is None
    finally:
        journal.close()
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(journaldb.SCHEMA_VERSION,)]
    again = store.open_journal(db)  # a second open finds nothing to migrate
    assert again.get_run("old-1").state is S.RESTORING
    again.close()


def test_a_read_only_open_reads_a_v1_journal_without_migrating_it(tmp_path: Path) -> None:
    db = tmp_path / "journal.db"
    _v1_journal(db)
    before = (db.read_bytes(), db.stat().st_mtime_ns)
    reader = store.open_journal(db, read_only=True)
    try:
        assert reader.resolve_run(None).token == 1
        assert [e.name for e in reader.events("old-1")] == ["ack"]
        assert [s.prior_known for s in reader.suspensions("old-1")] == [True]
        with pytest.raises(errors.JournalReadOnlyError):
            reader.set_state("old-1", S.DONE, actor="drill", trigger="t", at=1.0)
    finally:
        reader.close()
    assert (db.read_bytes(), db.stat().st_mtime_ns) == before


def _v2_journal(db: Path) -> None:
    """A journal as drill wrote it before suspensions kept their order (schema version 2)."""
    _v1_journal(db)
    store.open_journal(db).close()  # migrated to the current version, then taken back to version 2
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("ALTER TABLE suspensions DROP COLUMN ordinal")
        conn.execute("DELETE FROM schema_version")
        conn.execute("INSERT INTO schema_version (version) VALUES (2)")
        conn.execute(
            "INSERT INTO suspensions (run_id, policy, kind, target_key, prior, deadline_at, state, updated_at,"
            " detail, prior_known) VALUES ('old-1', 'a', 'sandbox-autorestart', 'sandbox:/x', '{}', 70.0,"
            " 'suspended', 12.0, '', 1)"
        )


def test_a_v2_journal_is_read_as_is_and_migrated_on_a_write_open(tmp_path: Path) -> None:
    db = tmp_path / "journal.db"
    _v2_journal(db)
    reader = store.open_journal(db, read_only=True)
    try:
        assert [s.policy for s in reader.suspensions("old-1")] == ["a", "p"]  # no order recorded: by name
    finally:
        reader.close()
    journal = store.open_journal(db)
    try:
        journal.record_intent(
            records.SuspensionRecord(
                run_id="old-1",
                policy="0-first-by-name",
                kind="sandbox-autorestart",
                target_key="sandbox:/x",
                prior={},
                deadline_at=70.0,
                state=records.SuspensionState.INTENDED,
                updated_at=13.0,
                prior_known=False,
            ),
            records.action("old-1", 13.0, "suspend.intent", actor="drill", trigger="t"),
        )
        # the rows of version 2 (ordinal 0) come first, by name; then the new intents in their order
        assert [s.policy for s in journal.suspensions("old-1")] == ["a", "p", "0-first-by-name"]
    finally:
        journal.close()
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert max(v for (v,) in conn.execute("SELECT version FROM schema_version")) == journaldb.SCHEMA_VERSION


def test_a_journal_newer_than_drill_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "journal.db"
    store.open_journal(db).close()
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("UPDATE schema_version SET version = 99")
    for read_only in (False, True):
        with pytest.raises(errors.JournalError, match=r"schema version 99.*upgrade drill"):
            store.open_journal(db, read_only=read_only)


def test_read_only_changes_no_byte_and_needs_the_file(tmp_path: Path) -> None:
    db = tmp_path / "journal.db"
    journal = store.open_journal(db)
    journal.create_run(make_run())
    journal.close()
    before = (db.read_bytes(), db.stat().st_mtime_ns)
    reader = store.open_journal(db, read_only=True)
    assert [r.run_id for r in reader.list_runs()] == ["d-1"]
    with pytest.raises(errors.JournalReadOnlyError):
        reader.create_run(make_run("d-2"))
    reader.close()
    assert (db.read_bytes(), db.stat().st_mtime_ns) == before
    with pytest.raises(errors.JournalUnavailableError, match="no journal at"):
        store.open_journal(tmp_path / "missing.db", read_only=True)
    assert not (tmp_path / "missing.db").exists()
    (tmp_path / "junk.db").write_bytes(b"not a database" * 100)
    with pytest.raises(errors.JournalUnavailableError, match=r"junk\.db"):
        store.open_journal(tmp_path / "junk.db", read_only=True)


_LIST_RUNS = (
    "import sys; from orchestrator.journal import store;"
    " print(store.open_journal(sys.argv[1], read_only=True).list_runs()[0].run_id)"
)


def _as_another_user() -> list[str]:
    """A command prefix running Python as a user who does not own the journal (``nobody`` when we are root).

    The venv's interpreter lives under root's home, which ``nobody`` cannot enter: use the system
    Python of the same version with the venv's packages on its path.
    """
    if os.geteuid() != 0:
        return [sys.executable]
    system = Path("/usr/bin/python3")
    version = subprocess.run(
        [str(system), "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True, check=False
    ).stdout.strip()
    assert version == str(sys.version_info[:2]), f"need {system} at Python {sys.version_info[:2]}, found {version}"
    path = f"{REPO}:{sysconfig.get_paths()['purelib']}"
    return ["runuser", "-u", "nobody", "--", "env", f"PYTHONPATH={path}", str(system)]


def test_a_user_who_cannot_write_the_journal_still_reads_it(tmp_path: Path) -> None:
    """chmod 444 journal in a 555 folder, read by a user who is not its owner (root cannot be stopped by chmod)."""
    folder = Path(tempfile.mkdtemp(prefix="drill-ro-", dir="/tmp"))
    try:
        journal = store.open_journal(folder / "journal.db")
        journal.create_run(make_run())
        journal.close()
        assert not (folder / "journal.db-wal").exists()  # the last close checkpointed the WAL away
        (folder / "journal.db").chmod(0o444)
        folder.chmod(0o555)
        out = subprocess.run(
            [*_as_another_user(), "-c", _LIST_RUNS, str(folder / "journal.db")],
            capture_output=True,
            text=True,
            check=False,
            cwd=REPO,
        )
        assert (out.returncode, out.stdout.strip()) == (0, "d-1"), out.stderr
        assert sorted(p.name for p in folder.iterdir()) == ["journal.db"]
    finally:
        folder.chmod(0o755)
        shutil.rmtree(folder)


def test_read_only_commands_work_for_a_user_who_cannot_write_the_journal() -> None:
    """`drill runs`, `status` and `journal` open the journal read-only: a 444 journal in a 555 folder is enough."""
    folder = Path(tempfile.mkdtemp(prefix="drill-ro-cli-", dir="/tmp"))
    try:
        journal = store.open_journal(folder / "journal.db")
        journal.create_run(make_run())
        journal.close()
        (folder / "journal.db").chmod(0o444)
        folder.chmod(0o555)
        before = (folder / "journal.db").read_bytes()
        for argv in (["runs"], ["status", "d-1"], ["journal", "d-1"]):
            out = subprocess.run(
                [*_as_another_user(), "-m", "orchestrator.cli.main", *argv],
                capture_output=True,
                text=True,
                check=False,
                cwd=REPO,
                env={**os.environ, "DRILL_HOME": str(folder), "DRILL_JOURNAL_URL": ""},
            )
            assert out.returncode == 0, (argv, out.stderr)
            assert "d-1" in out.stdout and "Traceback" not in out.stderr, (argv, out.stdout, out.stderr)
        assert (folder / "journal.db").read_bytes() == before
        assert sorted(p.name for p in folder.iterdir()) == ["journal.db"]
    finally:
        folder.chmod(0o755)
        shutil.rmtree(folder)
