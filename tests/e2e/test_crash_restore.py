"""SIGKILL `drill run` at each mutating step; `drill restore` in a fresh process puts everything back."""

from __future__ import annotations

import contextlib
import signal
import sqlite3
import subprocess
from collections.abc import Callable
from subprocess import CompletedProcess

import pytest

from orchestrator.policies import base as policy_base
from orchestrator.sandbox import control
from tests.conftest import DrillEnv, journal_rows, paused_run, read_report, wait_for

pytestmark = pytest.mark.e2e


def _paused_run(drill_env: DrillEnv, step: str, auto: str) -> tuple[subprocess.Popen[str], str]:
    return paused_run(drill_env, step, auto)


def _journal_rows(drill_env: DrillEnv, sql: str, *params: object) -> list[tuple[object, ...]]:
    return journal_rows(drill_env.home, sql, *params)


@pytest.mark.parametrize(
    ("step", "auto"),
    [
        ("suspending", "ack=1s"),
        ("injecting", "ack=1s"),
        ("responding", "ack=1s"),
        ("restoring", "ack=0.2s,mitigate=0.4s,resolve=0.6s"),
    ],
)
def test_sigkill_then_restore_leaves_auto_restart_on_and_no_marker(
    step: str,
    auto: str,
    drill_env: DrillEnv,
    sandbox: control.SandboxClient,
    run_drill: Callable[..., CompletedProcess[str]],
) -> None:
    proc, run_id = _paused_run(drill_env, step, auto)
    before = sandbox.status()
    if step != "restoring":
        # The run really got as far as suspending: auto-restart is off and marked with this run.
        assert before.autorestart is False
        marker = policy_base.Marker.from_json(before.annotations[policy_base.MARKER_KEY])
        assert marker is not None and marker.run_id == run_id and marker.original["autorestart"] is True
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    if proc.stderr:
        proc.stderr.close()

    status = run_drill("status", run_id)
    assert "its process" in status.stdout and "is gone" in status.stdout, status.stdout

    restored = run_drill("restore", run_id)
    assert restored.returncode == 0, restored.stderr + restored.stdout
    assert "restored and verified: supervisor-auto-restart" in restored.stdout

    after = sandbox.status()
    assert after.autorestart is True
    assert policy_base.MARKER_KEY not in after.annotations
    states = _journal_rows(drill_env, "SELECT state FROM suspensions WHERE run_id = ?", run_id)
    assert states == [("restored",)]
    [(run_state, outcome)] = _journal_rows(drill_env, "SELECT state, outcome FROM runs WHERE run_id = ?", run_id)
    assert run_state == "done"
    # Killed before the responder resolved: aborted. Killed while restoring after a resolve: the drill's own outcome.
    expected = "unaided" if step == "restoring" else "aborted"
    assert outcome == expected
    # The fault was rolled back and the report of the orphaned run was written.
    assert sandbox.healthy() or wait_for(sandbox.healthy, timeout_s=10, what="the service to be back")
    report = read_report(drill_env.archive / run_id)
    assert report["outcome"] == expected
    if step == "restoring":
        assert any("drill restore" in n["text"] for n in report["notes"])  # type: ignore[attr-defined]
    else:
        assert "drill restore" in str(report["abort_reason"])
    # Auto-restart works again: kill the service and the supervisor brings it back.
    killed = sandbox.kill_service()
    wait_for(
        lambda: (s := sandbox.status()).service.running and s.service.pid != killed,
        timeout_s=10,
        what="the supervisor to restart the service",
    )
    # A second restore finds nothing left to do.
    events_before = _journal_rows(drill_env, "SELECT count(*) FROM events WHERE run_id = ?", run_id)
    again = run_drill("restore", run_id)
    assert again.returncode == 0 and "is done: nothing to restore" in again.stdout
    # ... and appends nothing to a finished run's journal.
    assert _journal_rows(drill_env, "SELECT count(*) FROM events WHERE run_id = ?", run_id) == events_before


def test_restore_refuses_a_run_whose_process_is_alive(
    drill_env: DrillEnv, sandbox: control.SandboxClient, run_drill: Callable[..., CompletedProcess[str]]
) -> None:
    proc, run_id = _paused_run(drill_env, "responding", "ack=1s")
    try:
        refused = run_drill("restore", run_id)
        assert refused.returncode == 1
        assert "still running" in refused.stderr
        assert sandbox.status().autorestart is False  # untouched
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        if proc.stderr:
            proc.stderr.close()
    assert run_drill("restore", run_id).returncode == 0
    assert sandbox.status().autorestart is True


def test_restore_expired_restores_past_deadline(
    drill_env: DrillEnv, sandbox: control.SandboxClient, run_drill: Callable[..., CompletedProcess[str]]
) -> None:
    proc, run_id = _paused_run(drill_env, "responding", "ack=1s")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    if proc.stderr:
        proc.stderr.close()
    # Not expired yet: --expired leaves it alone.
    early = run_drill("restore", "--expired")
    assert early.returncode == 0 and "no run in the journal is past its deadline" in early.stdout
    assert sandbox.status().autorestart is False
    # Move the deadline into the past, as if the run had been dead for its whole max duration.
    with contextlib.closing(sqlite3.connect(drill_env.home / "journal.db")) as db, db:
        db.execute("UPDATE suspensions SET deadline_at = deadline_at - 100000 WHERE run_id = ?", (run_id,))
    late = run_drill("restore", "--expired")
    assert late.returncode == 0, late.stderr
    assert "restored and verified: supervisor-auto-restart" in late.stdout
    assert sandbox.status().autorestart is True
    assert policy_base.MARKER_KEY not in sandbox.status().annotations
