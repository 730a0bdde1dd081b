"""A failed preflight changes nothing; `drill plan` reads only."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from orchestrator.policies import base as policy_base
from orchestrator.sandbox import control
from tests.conftest import NO_AUTOMATION, DrillEnv, copy_drill, journal_rows

pytestmark = pytest.mark.e2e


def _fingerprint(client: control.SandboxClient) -> tuple[object, ...]:
    status = client.status()
    return (status.autorestart, dict(status.annotations), status.service.pid, status.service.restarts)


def _assert_failed_run_changed_nothing(
    done: CompletedProcess[str], drill_env: DrillEnv, sandbox: control.SandboxClient, before: tuple[object, ...]
) -> None:
    assert done.returncode == 2, done.stdout + done.stderr
    assert "preflight failed, nothing was changed" in done.stderr
    assert "Traceback" not in done.stderr
    assert _fingerprint(sandbox) == before
    assert journal_rows(drill_env.home, "SELECT state, outcome FROM runs") == [("failed", "failed")]
    assert journal_rows(drill_env.home, "SELECT COUNT(*) FROM suspensions") == [(0,)]


def test_blackout_window_fails_preflight(
    tmp_path: Path, drill_env: DrillEnv, sandbox: control.SandboxClient, run_drill: Callable[..., CompletedProcess[str]]
) -> None:
    now = datetime.now(UTC)
    window = {
        "start": (now - timedelta(hours=1)).isoformat(),
        "end": (now + timedelta(hours=1)).isoformat(),
        "reason": "freeze",
    }
    drill = copy_drill(tmp_path, "frozen", blackouts=[window])
    before = _fingerprint(sandbox)
    done = run_drill("run", str(drill), "--plain")
    _assert_failed_run_changed_nothing(done, drill_env, sandbox, before)
    assert "blackout window" in done.stderr and "freeze" in done.stderr


def test_policy_marked_by_another_run_fails_preflight(
    drill_env: DrillEnv, sandbox: control.SandboxClient, run_drill: Callable[..., CompletedProcess[str]]
) -> None:
    other = policy_base.Marker(
        "someone-elses-run", "supervisor-auto-restart", "sandbox-autorestart", {"autorestart": True}, 1e12
    )
    sandbox.set_annotation(policy_base.MARKER_KEY, other.to_json())
    before = _fingerprint(sandbox)
    done = run_drill("run", str(NO_AUTOMATION), "--plain")
    _assert_failed_run_changed_nothing(done, drill_env, sandbox, before)
    assert "target not locked" in done.stderr and "someone-elses-run" in done.stderr


def test_steady_state_not_holding_fails_preflight(
    drill_env: DrillEnv, sandbox: control.SandboxClient, run_drill: Callable[..., CompletedProcess[str]]
) -> None:
    sandbox.set_autorestart(False)
    sandbox.kill_service()
    sandbox.wait_until(lambda s: not s.service.running, timeout_s=10)
    before = _fingerprint(sandbox)
    done = run_drill("run", str(NO_AUTOMATION), "--plain")
    _assert_failed_run_changed_nothing(done, drill_env, sandbox, before)
    assert "steady state holds" in done.stderr


def test_unreachable_target_fails_preflight(
    drill_env: DrillEnv, run_drill: Callable[..., CompletedProcess[str]]
) -> None:
    done = run_drill("run", str(NO_AUTOMATION), "--plain")
    assert done.returncode == 2
    assert "target reachable" in done.stderr and "drill sandbox start" in done.stderr
    assert not drill_env.sandbox_home.joinpath("state.json").exists()


def test_plan_shows_current_values_and_changes_nothing(
    drill_env: DrillEnv, sandbox: control.SandboxClient, run_drill: Callable[..., CompletedProcess[str]]
) -> None:
    before = _fingerprint(sandbox)
    done = run_drill("plan", str(NO_AUTOMATION))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert (
        "supervisor-auto-restart (sandbox-autorestart): now auto-restart on; during the drill auto-restart off" in out
    )
    assert "kill-the-service" in out and "ensure-the-service-runs" in out
    assert "back to auto-restart on" in out
    assert "deadline 22m00.0s" in out
    assert "nothing was changed" in out
    assert _fingerprint(sandbox) == before
    assert journal_rows(drill_env.home, "SELECT COUNT(*) FROM runs") in ([], [(0,)])
