"""Two runs aimed at one sandbox at once: claiming and reading the prior are one step, so one run wins.

The bug this guards: the lock check and the suspend were separate steps, both runs suspended, and the second
recorded the first's "auto-restart off" as its prior, so auto-restart stayed off after an abort.
"""

from __future__ import annotations

import threading

import pytest

from orchestrator import errors
from orchestrator.policies import base
from orchestrator.sandbox import control
from orchestrator.targets import sandbox as sandbox_target
from tests.conftest import DrillEnv

ROUNDS = 40


def _suspender(drill_env: DrillEnv) -> base.Suspender:
    """A suspender over its own SandboxClient, as a second drill home (its own process) would have."""
    return sandbox_target.SandboxTarget(drill_env.sandbox_home).suspender("sandbox-autorestart", "autorestart")


def _marker(run_id: str) -> base.Marker:
    return base.Marker(run_id=run_id, policy="autorestart", kind="sandbox-autorestart", original={}, deadline_at=1e12)


def _race(
    runs: dict[str, base.Suspender], round_: int
) -> tuple[dict[str, dict[str, object]], dict[str, errors.MarkerConflictError]]:
    """Each run claims and suspends from its own thread, released together by a barrier."""
    start = threading.Barrier(len(runs))
    won: dict[str, dict[str, object]] = {}
    refused: dict[str, errors.MarkerConflictError] = {}
    crashed: list[BaseException] = []

    def run(name: str, suspender: base.Suspender) -> None:
        run_id = f"run-{name}-{round_}"
        start.wait(timeout=10)
        try:
            original = suspender.claim(_marker(run_id))
            suspender.suspend(run_id=run_id)  # what made the bug: both runs got this far
            won[run_id] = original
        except errors.MarkerConflictError as conflict:
            refused[run_id] = conflict
        except BaseException as other:
            crashed.append(other)

    threads = [threading.Thread(target=run, args=item) for item in runs.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not crashed and not any(t.is_alive() for t in threads), crashed
    return won, refused


def test_two_runs_claiming_at_once_one_wins_and_auto_restart_comes_back(
    drill_env: DrillEnv, sandbox: control.SandboxClient
) -> None:
    runs = {"a": _suspender(drill_env), "b": _suspender(drill_env)}
    for round_ in range(ROUNDS):
        won, refused = _race(runs, round_)
        assert len(won) == 1 and len(refused) == 1, (round_, won, refused)
        (winner, original), (loser, exc) = next(iter(won.items())), next(iter(refused.items()))
        assert original["autorestart"] is True, "the winner's prior is the real value, never a suspended one"
        assert f"run {winner}" in str(exc) and f"`drill restore {winner}`" in str(exc)

        status = sandbox.status()
        marker = base.Marker.from_json(status.annotations[base.MARKER_KEY])
        assert marker is not None and marker.run_id == winner and marker.original == original
        assert status.autorestart is False

        # The winner's run ends (resolved or aborted): its restore brings auto-restart back, every round.
        suspender = runs[winner.split("-")[1]]
        suspender.restore(original, run_id=winner)
        assert suspender.verify_restored(original, run_id=winner)
        after = sandbox.status()
        assert after.autorestart is True and base.MARKER_KEY not in after.annotations, round_
        # The loser never suspended anything: a restore in its name finds nothing of its own to undo.
        runs[loser.split("-")[1]].restore(original, run_id=loser)
        assert sandbox.status().autorestart is True


def test_a_guarded_suspend_loses_to_a_release_in_between(drill_env: DrillEnv, sandbox: control.SandboxClient) -> None:
    """The suspend write checks the marker under the same lock: after the release it can no longer apply."""
    suspender = _suspender(drill_env)
    original = suspender.claim(_marker("run-1"))
    suspender.restore(original, run_id="run-1")
    with pytest.raises(errors.PolicyError, match="claim it before suspending"):
        suspender.suspend(run_id="run-1")
    assert sandbox.status().autorestart is True


def test_claim_refuses_an_annotation_that_is_not_a_marker(drill_env: DrillEnv, sandbox: control.SandboxClient) -> None:
    sandbox.set_annotation(base.MARKER_KEY, "hand-written")
    with pytest.raises(errors.MarkerConflictError, match="not a drill marker"):
        _suspender(drill_env).claim(_marker("run-1"))
    assert dict(sandbox.status().annotations) == {base.MARKER_KEY: "hand-written"}
