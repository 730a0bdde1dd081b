"""The timings of DESIGN.md, computed from a run's timeline. t0 = the moment the fault is confirmed active.

- acknowledge: notification posted -> first acknowledgement
- detect:      t0 -> first steady-state breach observed
- diagnose:    acknowledgement -> responder declares the cause
- mitigate:    t0 -> the steady state holds again for the hold window (measured to the start of the window)
- resolve:     t0 -> responder resolves *and* the fault is rolled back (the later of the two)
- recover:     auto-recovery drills: t0 -> steady state holds again, with no human

A run that ends before an event happened gets a censored timing: no value, only the lower bound
"more than N s", never an invented number.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from orchestrator import records

TL = records.TimelineKind


@dataclass(frozen=True)
class Timing:
    name: str
    seconds: float | None
    censored: bool = False
    lower_bound_s: float | None = None
    expected_s: float | None = None

    @property
    def met(self) -> bool | None:
        """True/False against the expectation; None when there is none or the timing is unknown."""
        if self.expected_s is None:
            return None
        if self.seconds is None:
            return False if self.censored and (self.lower_bound_s or 0) >= self.expected_s else None
        return self.seconds <= self.expected_s


def first(timeline: Iterable[records.Event], kind: records.TimelineKind) -> records.Event | None:
    return next((e for e in timeline if e.name == kind.value), None)


def compute(
    timeline: list[records.Event],
    *,
    mode: str,
    ended_at: float | None,
    expectations: Mapping[str, float | None],
) -> list[Timing]:
    """Timings from the timeline events of one run (kind == TIMELINE, in order)."""
    at = {k: (e.at if (e := first(timeline, k)) else None) for k in TL}
    t0 = at[TL.FAULT_ACTIVE]

    def timing(name: str, start: float | None, end: float | None) -> Timing:
        expected = expectations.get(name)
        if start is None:
            return Timing(name, None, expected_s=expected)
        if end is not None:
            return Timing(name, max(0.0, end - start), expected_s=expected)
        bound = max(0.0, ended_at - start) if ended_at is not None else None
        return Timing(name, None, censored=ended_at is not None, lower_bound_s=bound, expected_s=expected)

    if mode == "auto-recovery":
        return [
            timing("detect", t0, at[TL.DETECTED]),
            timing("recover", t0, at[TL.STEADY_STATE_RESTORED]),
        ]
    if mode == "chaos":
        return [timing("detect", t0, at[TL.DETECTED])]
    resolved = at[TL.RESOLVED]
    rolled = at[TL.ROLLED_BACK]
    resolve_end = max(resolved, rolled) if resolved is not None and rolled is not None else None
    return [
        timing("acknowledge", at[TL.NOTIFIED], at[TL.ACKNOWLEDGED]),
        timing("detect", t0, at[TL.DETECTED]),
        timing("diagnose", at[TL.ACKNOWLEDGED], at[TL.DIAGNOSED]),
        timing("mitigate", t0, at[TL.STEADY_STATE_RESTORED]),
        timing("resolve", t0, resolve_end),
    ]
