"""Restore from the markers alone, with no journal anywhere (``orchestrator/restore/markers.py``)."""

from __future__ import annotations

import time

from orchestrator.policies import base
from orchestrator.restore import markers
from orchestrator.sandbox import control
from orchestrator.targets import sandbox as sandbox_target
from tests.conftest import DrillEnv

DEADLINE_IN_S = 3600.0


def _suspend(drill_env: DrillEnv, run_id: str, deadline_at: float) -> sandbox_target.SandboxTarget:
    target = sandbox_target.SandboxTarget(drill_env.sandbox_home)
    suspender = target.suspender("sandbox-autorestart", "autorestart")
    marker = base.Marker(
        run_id=run_id, policy="autorestart", kind="sandbox-autorestart", original={}, deadline_at=deadline_at
    )
    suspender.claim(marker)
    suspender.suspend(run_id=run_id)
    return target


def _suspended_by(sandbox: control.SandboxClient, run_id: str) -> bool:
    status = sandbox.status()
    marker = base.Marker.from_json(status.annotations.get(base.MARKER_KEY, ""))
    return not status.autorestart and marker is not None and marker.run_id == run_id


def _restored(sandbox: control.SandboxClient) -> bool:
    status = sandbox.status()
    return status.autorestart and base.MARKER_KEY not in status.annotations


def test_a_named_run_is_restored_at_once_without_a_journal(drill_env: DrillEnv, sandbox: control.SandboxClient) -> None:
    now = time.time()
    target = _suspend(drill_env, "run-1", deadline_at=now + DEADLINE_IN_S)
    assert not drill_env.home.joinpath("journal.db").exists()

    other = markers.restore_from_markers(target, run_id="run-2", now=now, expired_only=True)
    assert other.restored == [] and other.failed == [] and len(other.skipped) == 1
    assert "run-1" in other.skipped[0] and "left alone" in other.skipped[0]
    assert _suspended_by(sandbox, "run-1")

    # expired_only does not apply to a run the user named: its deadline is an hour away and it is restored now.
    report = markers.restore_from_markers(target, run_id="run-1", now=now, expired_only=True)
    assert report.ok and report.skipped == [] and len(report.restored) == 1
    assert "autorestart" in report.restored[0] and "run-1" in report.restored[0]
    assert "auto-restart on" in report.restored[0] and "verified" in report.restored[0]
    assert _restored(sandbox)

    again = markers.restore_from_markers(target, run_id="run-1", now=now, expired_only=True)
    assert (again.restored, again.failed, again.skipped) == ([], [], [])  # nothing left: idempotent


def test_expired_only_restores_a_marker_past_its_deadline_and_leaves_one_before_it(
    drill_env: DrillEnv, sandbox: control.SandboxClient
) -> None:
    now = time.time()
    deadline = now + DEADLINE_IN_S
    target = _suspend(drill_env, "run-1", deadline_at=deadline)

    early = markers.restore_from_markers(target, run_id=None, now=deadline - 1, expired_only=True)
    assert early.restored == [] and early.failed == [] and len(early.skipped) == 1
    assert "deadline not reached" in early.skipped[0]
    assert _suspended_by(sandbox, "run-1")

    late = markers.restore_from_markers(target, run_id=None, now=deadline + 1, expired_only=True)
    assert late.ok and len(late.restored) == 1 and "run-1" in late.restored[0]
    assert _restored(sandbox)


def test_every_marker_when_not_expired_only(drill_env: DrillEnv, sandbox: control.SandboxClient) -> None:
    now = time.time()
    target = _suspend(drill_env, "run-1", deadline_at=now + DEADLINE_IN_S)
    report = markers.restore_from_markers(target, run_id=None, now=now, expired_only=False)
    assert report.ok and len(report.restored) == 1
    assert _restored(sandbox)


def test_an_unreachable_target_is_a_failure_not_a_crash(drill_env: DrillEnv) -> None:
    target = sandbox_target.SandboxTarget(drill_env.sandbox_home)  # no supervisor was ever started here
    report = markers.restore_from_markers(target, run_id=None, now=time.time(), expired_only=True)
    assert not report.ok and "markers unreadable" in report.failed[0]
