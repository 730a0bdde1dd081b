"""The suspender contract: every policy kind passes the same suite against its real target.

Kubernetes suspenders join the ``suspender`` fixture's params when they land.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from orchestrator import errors
from orchestrator.policies import base
from orchestrator.sandbox import control
from orchestrator.targets import sandbox as sandbox_target
from tests.conftest import DrillEnv


@pytest.fixture(params=["sandbox-autorestart"])
def suspender(request: pytest.FixtureRequest, drill_env: DrillEnv) -> Iterator[base.Suspender]:
    if request.param == "sandbox-autorestart":
        control.start_sandbox(drill_env.sandbox_home, restart_delay_s=0.2)
        try:
            yield sandbox_target.SandboxTarget(drill_env.sandbox_home).suspender("sandbox-autorestart", "p")
        finally:
            control.stop_sandbox(drill_env.sandbox_home)


def _marker(run_id: str = "run-1") -> base.Marker:
    """What the engine passes to ``claim``: everything but the original, which the suspender fills."""
    return base.Marker(run_id=run_id, policy="p", kind="sandbox-autorestart", original={}, deadline_at=1e12)


def test_snapshot_reads_without_changing(suspender: base.Suspender) -> None:
    first = suspender.snapshot()
    assert suspender.snapshot() == first
    assert suspender.marker() is None


def test_claim_returns_the_prior_and_writes_it_into_the_marker(suspender: base.Suspender) -> None:
    before = suspender.snapshot()
    original = suspender.claim(_marker())
    assert original == before
    marker = suspender.marker()
    assert marker is not None and marker.run_id == "run-1" and marker.original == original
    assert marker.deadline_at == 1e12 and marker.instance  # the object's identity it was claimed on
    assert suspender.snapshot() == before  # claiming marks, it does not suspend


def test_claim_is_idempotent_for_the_same_run(suspender: base.Suspender) -> None:
    original = suspender.claim(_marker())
    suspender.suspend(run_id="run-1")
    # A retried claim (the engine restarted the step) returns what its own marker recorded, not "off".
    assert suspender.claim(_marker()) == original
    assert suspender.describe(original) != suspender.describe(suspender.suspended_value())


def test_a_second_runs_claim_is_refused_naming_the_holder_and_records_nothing(suspender: base.Suspender) -> None:
    suspender.claim(_marker("run-1"))
    suspender.suspend(run_id="run-1")
    held = suspender.marker()
    with pytest.raises(errors.MarkerConflictError, match=r"run run-1.*`drill restore run-1`"):
        suspender.claim(_marker("run-2"))
    assert suspender.marker() == held


def test_suspend_without_a_claim_fails_and_changes_nothing(suspender: base.Suspender) -> None:
    before = suspender.snapshot()
    with pytest.raises(errors.PolicyError, match="claim"):
        suspender.suspend(run_id="run-1")
    assert suspender.snapshot() == before
    assert not suspender.verify_suspended(run_id="run-1")


def test_suspend_under_another_runs_marker_is_refused(suspender: base.Suspender) -> None:
    before = suspender.snapshot()
    suspender.claim(_marker("other-run"))
    with pytest.raises(errors.MarkerConflictError, match="other-run"):
        suspender.suspend(run_id="run-1")
    assert suspender.snapshot() == before


def test_suspend_marks_and_verifies_idempotently(suspender: base.Suspender) -> None:
    original = suspender.claim(_marker())
    suspender.suspend(run_id="run-1")
    suspender.suspend(run_id="run-1")
    assert suspender.verify_suspended(run_id="run-1")
    assert not suspender.verify_suspended(run_id="other-run")
    assert suspender.describe(suspender.snapshot()) == suspender.describe(suspender.suspended_value())
    assert not suspender.verify_restored(original, run_id="run-1")


def test_restore_puts_back_and_removes_the_marker_idempotently(suspender: base.Suspender) -> None:
    original = suspender.claim(_marker())
    suspender.suspend(run_id="run-1")
    suspender.restore(original, run_id="run-1")
    suspender.restore(original, run_id="run-1")
    assert suspender.snapshot() == original
    assert suspender.marker() is None
    assert suspender.verify_restored(original, run_id="run-1")


def test_restore_without_suspend_is_harmless(suspender: base.Suspender) -> None:
    """A crash between the journal's intent and the claim, or between the claim and the suspend."""
    original = suspender.snapshot()
    suspender.restore(original, run_id="run-1")
    assert suspender.verify_restored(original, run_id="run-1")
    assert suspender.claim(_marker()) == original
    suspender.restore(original, run_id="run-1")
    assert suspender.verify_restored(original, run_id="run-1") and suspender.marker() is None


def test_restore_by_another_run_does_not_clobber(suspender: base.Suspender) -> None:
    original = suspender.claim(_marker("other-run"))
    suspender.suspend(run_id="other-run")
    held = suspender.marker()
    with pytest.raises(errors.MarkerConflictError, match="other-run"):
        suspender.restore(original, run_id="run-1")
    assert suspender.marker() == held
    assert suspender.verify_suspended(run_id="other-run")  # still suspended: that run's to restore
    suspender.restore(original, run_id="other-run")
    assert suspender.verify_restored(original, run_id="other-run")


def test_describe_names_the_value(suspender: base.Suspender) -> None:
    assert suspender.describe(suspender.snapshot()) != suspender.describe(suspender.suspended_value())


def test_marker_round_trip_and_foreign_data() -> None:
    marker = base.Marker(
        run_id="r", policy="p", kind="k", original={"autorestart": True}, deadline_at=5.0, instance="abc"
    )
    assert base.Marker.from_json(marker.to_json()) == marker
    without_instance = '{"run_id": "r", "policy": "p", "kind": "k", "original": {}, "deadline_at": 1}'
    parsed = base.Marker.from_json(without_instance)
    assert parsed is not None and parsed.instance == ""  # markers written before instances existed
    for foreign in ("", "not json", "[]", '{"run_id": "x"}', "null", '"text"'):
        assert base.Marker.from_json(foreign) is None
