"""Review findings, second half: a lost journal, ``--expired`` against live and hung runs, responder input.

Helpers and fixtures are those of ``test_findings.py``.
"""

from __future__ import annotations

import os

import pytest

from orchestrator.sandbox import control
from tests.conftest import DrillEnv, journal_rows, wait_for
from tests.e2e.test_findings import (
    POLICY,
    Held,
    RunDrill,
    assert_automation_back,
    assert_suspended_by,
    clean_stderr,
    event_count,
    finished_run,
    held,
    run_state,
    write_journal,
)

pytestmark = pytest.mark.e2e

__all__ = ["held"]  # the fixture, re-exported for pytest


# ----------------------------------------- 9. the journal is lost while a run has automation suspended


def _ruin_journal(drill_env: DrillEnv, how: str) -> None:
    """Lose the journal: its WAL and shared-memory files go too (with a hot WAL SQLite would rebuild it)."""
    db = drill_env.home / "journal.db"
    for sidecar in ("journal.db-wal", "journal.db-shm", "journal.db-journal"):
        (drill_env.home / sidecar).unlink(missing_ok=True)
    if how == "deleted":
        db.unlink()
    elif how == "truncated":
        with db.open("r+b") as f:
            f.truncate(100)
    elif how == "garbage":
        db.write_bytes(os.urandom(64 * 1024))
    elif how == "directory":
        db.unlink()
        db.mkdir()
    else:
        raise AssertionError(how)


@pytest.mark.parametrize("how", ["deleted", "truncated", "garbage", "directory"])
def test_restore_falls_back_to_markers_when_the_journal_is_lost(
    how: str, drill_env: DrillEnv, sandbox: control.SandboxClient, held: Held, run_drill: RunDrill
) -> None:
    run_id = held.killed("responding")
    assert_suspended_by(sandbox, run_id)
    _ruin_journal(drill_env, how)
    restored = run_drill("restore", run_id)
    clean_stderr(restored.stderr)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "restored and verified from its marker" in restored.stdout, restored.stdout
    assert run_id in restored.stdout, restored.stdout
    assert_automation_back(sandbox)


def test_restore_from_markers_with_an_intact_journal(
    drill_env: DrillEnv, sandbox: control.SandboxClient, held: Held, run_drill: RunDrill
) -> None:
    run_id = held.killed("responding")
    assert_suspended_by(sandbox, run_id)
    restored = run_drill("restore", run_id, "--from-markers")
    clean_stderr(restored.stderr)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "restored and verified from its marker" in restored.stdout, restored.stdout
    assert_automation_back(sandbox)


# ------------------------------------------------- 10. --expired: a live run is left, a hung one taken


def test_restore_expired_leaves_a_live_run_and_takes_a_hung_one_over(
    drill_env: DrillEnv, sandbox: control.SandboxClient, held: Held, run_drill: RunDrill
) -> None:
    proc, run_id = held.start("responding")
    # Alive and before its deadline: left alone.
    early = run_drill("restore", "--expired")
    clean_stderr(early.stderr)
    assert early.returncode == 0, early.stdout + early.stderr
    assert "restored and verified" not in early.stdout
    assert_suspended_by(sandbox, run_id)
    assert proc.poll() is None
    assert run_state(drill_env, run_id)[0] == "responding"
    # Hung (still heartbeating, but stuck) and past its deadline: taken over and restored.
    write_journal(drill_env, "UPDATE runs SET deadline_at = deadline_at - 100000 WHERE run_id = ?", run_id)
    write_journal(drill_env, "UPDATE suspensions SET deadline_at = deadline_at - 100000 WHERE run_id = ?", run_id)
    late = run_drill("restore", "--expired")
    clean_stderr(late.stderr)
    assert late.returncode == 0, late.stdout + late.stderr
    assert f"restored and verified: {POLICY}" in late.stdout
    assert_automation_back(sandbox)
    assert run_state(drill_env, run_id) == ("done", "aborted")
    events = event_count(drill_env, run_id)
    # The hung engine wakes up: its token is stale, so it exits 7 and writes nothing more.
    (drill_env.hooks_dir / f"{run_id}.responding.resume").touch()
    out, err = proc.communicate(timeout=60)
    clean_stderr(err)
    assert proc.returncode == 7, out + err
    assert "taken over" in err, err
    written_after = journal_rows(
        drill_env.home,
        "SELECT kind, name, actor, trigger, actual, data FROM events WHERE run_id = ? ORDER BY seq LIMIT -1 OFFSET ?",
        run_id,
        events,
    )
    assert written_after == [], f"the engine that was taken over still wrote: {written_after}"
    assert run_state(drill_env, run_id) == ("done", "aborted")
    assert journal_rows(drill_env.home, "SELECT state FROM suspensions WHERE run_id = ?", run_id) == [("restored",)]
    assert_automation_back(sandbox)  # nor did it touch the target again


# ------------------------------------------------------------------ 11. responder input taken literally


def test_empty_note_is_refused_and_writes_nothing(
    drill_env: DrillEnv, sandbox: control.SandboxClient, held: Held, run_drill: RunDrill
) -> None:
    proc, run_id = held.start("responding")
    wait_for(lambda: run_state(drill_env, run_id)[0] == "responding", timeout_s=10, what="the run to respond")
    before = event_count(drill_env, run_id)
    for text in ("", "   ", "\t\n"):
        note = run_drill("note", run_id, "--as", "alice", "-m", text)
        clean_stderr(note.stderr)
        assert note.returncode != 0, f"empty note {text!r} accepted: {note.stdout}"
        assert "needs text" in note.stderr, note.stderr
    assert event_count(drill_env, run_id) == before
    # A note with text is taken, so the refusal above is about the text, not the run.
    ok = run_drill("note", run_id, "--as", "alice", "-m", "saw it")
    assert ok.returncode == 0, ok.stderr
    assert event_count(drill_env, run_id) == before + 1
    assert proc.poll() is None


@pytest.mark.parametrize("pattern", ["sandbox%", "%", "sandbox_no", "_andbox"])
def test_run_ids_are_matched_literally(
    pattern: str, drill_env: DrillEnv, sandbox: control.SandboxClient, run_drill: RunDrill
) -> None:
    run_id = finished_run(run_drill)
    shown = run_drill("status", pattern)
    clean_stderr(shown.stderr)
    assert shown.returncode != 0, shown.stdout
    assert run_id not in shown.stdout
    # The real prefix still resolves.
    assert run_drill("status", run_id[:-3]).returncode == 0
