"""The auto-recovery drill: automation stays on and the drill times the supervisor's recovery, no human."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from orchestrator.sandbox import control
from tests.conftest import AUTO_RECOVERY, DrillEnv, copy_drill, journal_rows, read_report, reported_dir

pytestmark = pytest.mark.e2e


def test_supervisor_recovers_by_itself_and_is_timed(
    drill_env: DrillEnv, sandbox: control.SandboxClient, run_drill: Callable[..., CompletedProcess[str]]
) -> None:
    restarts_before = sandbox.status().service.restarts
    done = run_drill("run", str(AUTO_RECOVERY), "--plain")
    assert done.returncode == 0, done.stderr + done.stdout
    report = read_report(reported_dir(done.stdout))
    assert report["outcome"] == "recovered"
    recover = next(t for t in report["timings"] if t["name"] == "recover")  # type: ignore[attr-defined]
    # The supervisor restarts 0.3 s after the exit (the fixture's delay); the probe sees it soon after.
    assert recover["seconds"] is not None and 0.2 <= recover["seconds"] <= 5.0
    assert recover["met"] is True
    assert report["policies"] == []
    assert sandbox.status().service.restarts == restarts_before + 1  # the automation did it, not a human
    assert journal_rows(drill_env.home, "SELECT COUNT(*) FROM suspensions") == [(0,)]


def test_auto_recovery_that_never_recovers_is_reported_not_recovered(
    tmp_path: Path, drill_env: DrillEnv, sandbox: control.SandboxClient, run_drill: Callable[..., CompletedProcess[str]]
) -> None:
    # Someone left auto-restart off: the automation the drill relies on is not there.
    sandbox.set_autorestart(False)
    drill = copy_drill(
        tmp_path,
        "never",
        base=AUTO_RECOVERY,
        guardrails={"maxDuration": "3s"},
        expectations={"recover": "1s"},
        detection={"interval": "200ms", "holdWindow": "1s"},
    )
    done = run_drill("run", str(drill), "--plain")
    assert done.returncode == 3, done.stderr + done.stdout
    report = read_report(reported_dir(done.stdout))
    assert report["outcome"] == "not recovered"
    recover = next(t for t in report["timings"] if t["name"] == "recover")  # type: ignore[attr-defined]
    assert recover["seconds"] is None and recover["censored"] is True and recover["met"] is False
    assert sandbox.healthy()  # the experiment's rollback brought the service back
