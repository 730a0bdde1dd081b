"""A run's outcome, derived once, from its journal events only.

The engine at the end of a run, ``drill restore`` finishing a crashed run and the report all call
``derive``, so a run gets the same outcome however it ended. The rules:

- an ``aborted`` timeline event: aborted (whatever else happened);
- ``chaos``: the ``hypothesis.after`` action held -> hypothesis held, else deviated;
- ``auto-recovery``: the steady state was restored (``steady-state-restored``) -> recovered, else not recovered;
- ``no-automation``: ``resolved`` -> with hints when a hint was given, else unaided; otherwise timed out.
"""

from __future__ import annotations

from collections.abc import Iterable

from orchestrator import records

TL = records.TimelineKind
O = records.Outcome  # noqa: E741 (short alias, as TL)


def derive(mode: records.RunMode, events: Iterable[records.Event]) -> records.Outcome:
    """The outcome of a run of ``mode`` whose journal holds ``events``."""
    timeline: set[str] = set()
    hypothesis_held: bool | None = None
    for event in events:
        if event.kind is records.EventKind.TIMELINE:
            timeline.add(event.name)
        elif event.kind is records.EventKind.ACTION and event.name == "hypothesis.after":
            hypothesis_held = bool(event.data.get("ok"))
    if TL.ABORTED.value in timeline:
        return O.ABORTED
    if mode is records.RunMode.CHAOS:
        if hypothesis_held is None:
            return O.ABORTED
        return O.HYPOTHESIS_HELD if hypothesis_held else O.DEVIATED
    if mode is records.RunMode.AUTO_RECOVERY:
        return O.RECOVERED if TL.STEADY_STATE_RESTORED.value in timeline else O.NOT_RECOVERED
    if TL.RESOLVED.value in timeline:
        return O.WITH_HINTS if TL.HINT.value in timeline else O.UNAIDED
    return O.TIMED_OUT
