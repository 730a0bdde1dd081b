"""Timings from a timeline: the DESIGN.md definitions, and censoring instead of invention."""

from __future__ import annotations

import pytest

from orchestrator import records, timings

TL = records.TimelineKind


def _tl(*pairs: tuple[records.TimelineKind, float]) -> list[records.Event]:
    return [records.Event("r", at, records.EventKind.TIMELINE, kind.value, "x") for kind, at in pairs]


def test_no_automation_timings_follow_their_definitions() -> None:
    timeline = _tl(
        (TL.FAULT_ACTIVE, 100.0),
        (TL.NOTIFIED, 100.5),
        (TL.DETECTED, 101.0),
        (TL.ACKNOWLEDGED, 110.5),
        (TL.DIAGNOSED, 130.5),
        (TL.STEADY_STATE_RESTORED, 160.0),
        (TL.RESOLVED, 170.0),
        (TL.ROLLED_BACK, 171.0),
    )
    got = {
        t.name: t
        for t in timings.compute(timeline, mode="no-automation", ended_at=172.0, expectations={"acknowledge": 5.0})
    }
    assert got["acknowledge"].seconds == pytest.approx(10.0)  # notification -> ack
    assert got["acknowledge"].met is False
    assert got["detect"].seconds == pytest.approx(1.0)  # t0 -> breach
    assert got["diagnose"].seconds == pytest.approx(20.0)  # ack -> diagnosed
    assert got["mitigate"].seconds == pytest.approx(60.0)  # t0 -> steady state holds again
    assert got["resolve"].seconds == pytest.approx(71.0)  # t0 -> the later of resolved and rolled back


def test_unreached_events_are_censored_with_a_lower_bound() -> None:
    timeline = _tl((TL.FAULT_ACTIVE, 100.0), (TL.NOTIFIED, 100.0), (TL.ACKNOWLEDGED, 105.0))
    got = {
        t.name: t
        for t in timings.compute(timeline, mode="no-automation", ended_at=400.0, expectations={"mitigate": 120.0})
    }
    assert got["mitigate"].seconds is None
    assert got["mitigate"].censored is True
    assert got["mitigate"].lower_bound_s == pytest.approx(300.0)
    assert got["mitigate"].met is False  # more than 300 s is certainly over a 120 s target
    assert got["diagnose"].lower_bound_s == pytest.approx(295.0)


def test_censored_below_target_is_unknown_not_met() -> None:
    timeline = _tl((TL.FAULT_ACTIVE, 100.0))
    [_, recover] = timings.compute(timeline, mode="auto-recovery", ended_at=103.0, expectations={"recover": 10.0})
    assert recover.seconds is None and recover.censored and recover.met is None


def test_resolve_waits_for_the_rollback() -> None:
    timeline = _tl((TL.FAULT_ACTIVE, 0.0), (TL.NOTIFIED, 0.0), (TL.RESOLVED, 10.0))
    resolve = next(
        t
        for t in timings.compute(timeline, mode="no-automation", ended_at=12.0, expectations={})
        if t.name == "resolve"
    )
    assert resolve.seconds is None and resolve.censored
