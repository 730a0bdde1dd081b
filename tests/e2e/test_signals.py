"""Every signal that ends a session restores, in every mutating state: SIGHUP (the terminal closed,
the SSH session lost) and SIGQUIT as well as SIGINT and SIGTERM. The run is held at a step with
the test pause hook, signalled there, then let go: it must notice, restore and exit 4 itself."""

from __future__ import annotations

import signal

import pytest

from orchestrator.policies import base as policy_base
from orchestrator.sandbox import control
from tests.conftest import DrillEnv, journal_rows, paused_run

pytestmark = pytest.mark.e2e

STEPS = [
    ("preflight", "ack=1s"),
    ("suspending", "ack=1s"),
    ("injecting", "ack=1s"),
    ("responding", "ack=1s"),
    ("restoring", "ack=0.2s,mitigate=0.4s,resolve=0.6s"),
]


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGQUIT], ids=["SIGHUP", "SIGQUIT"])
@pytest.mark.parametrize(("step", "auto"), STEPS, ids=[s for s, _ in STEPS])
def test_session_ending_signal_in_each_state_restores(
    sig: signal.Signals, step: str, auto: str, drill_env: DrillEnv, sandbox: control.SandboxClient
) -> None:
    proc, run_id = paused_run(drill_env, step, auto, capture_stdout=True)
    if step not in ("preflight", "restoring"):
        assert sandbox.status().autorestart is False, "the run had suspended auto-restart"
    proc.send_signal(sig)
    (drill_env.hooks_dir / f"{run_id}.{step}.resume").touch()
    out, err = proc.communicate(timeout=60)
    assert "Traceback" not in err
    status = sandbox.status()
    assert status.autorestart is True
    assert policy_base.MARKER_KEY not in status.annotations
    state = journal_rows(drill_env.home, "SELECT state, outcome FROM runs WHERE run_id = ?", run_id)
    if step == "preflight":
        # Nothing was changed yet: the run ends failed, saying it was interrupted, and exits 2.
        assert proc.returncode == 2, out + err
        assert state == [("failed", "failed")]
        assert sig.name in err
    elif step == "restoring":
        # Already restoring: the signal is acknowledged and the restore completes as it would have.
        assert proc.returncode == 0, out + err
        assert state == [("done", "unaided")]
    else:
        assert proc.returncode == 4, out + err
        assert sig.name in err and "automation restored" in err
        assert state == [("done", "aborted")]
        assert journal_rows(drill_env.home, "SELECT state FROM suspensions WHERE run_id = ?", run_id) == [("restored",)]
