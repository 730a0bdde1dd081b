"""The suspender contract: every policy kind passes the same suite against its real target.

Kubernetes suspenders join the ``suspender`` fixture's params when they land.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

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


def _marker(original: dict[str, object], run_id: str = "run-1") -> base.Marker:
    return base.Marker(run_id=run_id, policy="p", kind="sandbox-autorestart", original=dict(original), deadline_at=1e12)


def test_snapshot_reads_without_changing(suspender: base.Suspender) -> None:
    first = suspender.snapshot()
    assert suspender.snapshot() == first
    assert suspender.marker() is None


def test_suspend_marks_and_verifies(suspender: base.Suspender) -> None:
    original = suspender.snapshot()
    suspender.suspend(_marker(original))
    assert suspender.verify_suspended()
    assert suspender.snapshot() == suspender.suspended_value()
    marker = suspender.marker()
    assert marker is not None and marker.run_id == "run-1" and marker.original == original
    assert not suspender.verify_restored(original, run_id="run-1")


def test_suspend_is_idempotent(suspender: base.Suspender) -> None:
    original = suspender.snapshot()
    suspender.suspend(_marker(original))
    suspender.suspend(_marker(original))
    assert suspender.verify_suspended()


def test_restore_puts_back_and_removes_the_marker_idempotently(suspender: base.Suspender) -> None:
    original = suspender.snapshot()
    suspender.suspend(_marker(original))
    suspender.restore(original, run_id="run-1")
    suspender.restore(original, run_id="run-1")
    assert suspender.snapshot() == original
    assert suspender.marker() is None
    assert suspender.verify_restored(original, run_id="run-1")


def test_restore_without_suspend_is_harmless(suspender: base.Suspender) -> None:
    """A crash between the journal's intent and the mutation: restore must still be safe."""
    original = suspender.snapshot()
    suspender.restore(original, run_id="run-1")
    assert suspender.verify_restored(original, run_id="run-1")


def test_restore_leaves_another_runs_marker(suspender: base.Suspender) -> None:
    original = suspender.snapshot()
    suspender.suspend(_marker(original, run_id="other-run"))
    suspender.restore(original, run_id="run-1")
    marker = suspender.marker()
    assert marker is not None and marker.run_id == "other-run"


def test_describe_names_the_value(suspender: base.Suspender) -> None:
    assert suspender.describe(suspender.snapshot()) != suspender.describe(suspender.suspended_value())


def test_marker_round_trip_and_foreign_data() -> None:
    marker = _marker({"autorestart": True})
    assert base.Marker.from_json(marker.to_json()) == marker
    for foreign in ("", "not json", "[]", '{"run_id": "x"}', "null"):
        assert base.Marker.from_json(foreign) is None
