"""Typed records that flow between stages: run states, journal events, suspensions, outcomes.

Kept at the bottom layer so every stage (run, restore, reporting, cli) speaks the same types.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from orchestrator import clock


class RunState(StrEnum):
    """The run lifecycle of DESIGN.md; ``failed`` is a preflight that stopped before any mutation."""

    PLANNED = "planned"
    PREFLIGHT = "preflight"
    SUSPENDING = "suspending"
    INJECTING = "injecting"
    RESPONDING = "responding"
    ABORTING = "aborting"
    RESTORING = "restoring"
    REPORTING = "reporting"
    DONE = "done"
    FAILED = "failed"

    @property
    def active(self) -> bool:
        return self not in (RunState.DONE, RunState.FAILED, RunState.PLANNED)


class RunMode(StrEnum):
    """What a run is for (DESIGN.md's drill modes), stored on the run so reports need no definition."""

    NO_AUTOMATION = "no-automation"
    AUTO_RECOVERY = "auto-recovery"
    CHAOS = "chaos"


class EventKind(StrEnum):
    TRANSITION = "transition"  # the run changed state
    ACTION = "action"  # an automated action: suspend, inject, probe, restore, verify...
    COMMAND = "command"  # a responder's command as typed (drill ack ...), consumed by the run
    TIMELINE = "timeline"  # a human-facing event of the run


class TimelineKind(StrEnum):
    FAULT_ACTIVE = "fault-active"
    NOTIFIED = "notified"
    DETECTED = "detected"
    ACKNOWLEDGED = "acknowledged"
    HINT = "hint"
    DIAGNOSED = "diagnosed"
    MITIGATED = "mitigated"
    STEADY_STATE_RESTORED = "steady-state-restored"
    RESOLVED = "resolved"
    NOTE = "note"
    ABORTED = "aborted"
    TIMED_OUT = "timed-out"
    ROLLED_BACK = "rolled-back"
    RESTORED = "restored"


class Command(StrEnum):
    """What a responder can send to a running drill."""

    ACK = "ack"
    DIAGNOSED = "diagnosed"
    MITIGATED = "mitigated"
    RESOLVE = "resolve"
    ABORT = "abort"
    NOTE = "note"
    HINT = "hint"


class SuspensionState(StrEnum):
    INTENDED = "intended"  # journaled, mutation may or may not have happened
    SUSPENDED = "suspended"
    RESTORING = "restoring"
    RESTORED = "restored"  # restored and verified by reading back
    FAILED = "failed"  # restore attempted and not verified: needs a human
    NOT_CLAIMED = "not-claimed"  # the object was never claimed: nothing to restore
    GONE = "gone"  # the object was deleted or replaced during the drill: reported, never recreated


class Outcome(StrEnum):
    UNAIDED = "unaided"
    WITH_HINTS = "with hints"
    TIMED_OUT = "timed out"
    ABORTED = "aborted"
    RECOVERED = "recovered"
    NOT_RECOVERED = "not recovered"
    HYPOTHESIS_HELD = "hypothesis held"
    DEVIATED = "deviated"
    FAILED = "failed"


@dataclass(frozen=True)
class Event:
    """One line of the journal: every transition and automated action, every command and timeline entry."""

    run_id: str
    at: float
    kind: EventKind
    name: str
    actor: str
    trigger: str = ""
    expected: str = ""
    actual: str = ""
    duration_s: float | None = None
    data: dict[str, Any] = field(default_factory=dict)
    seq: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "run_id": self.run_id,
            "at": clock.iso(self.at),
            "kind": self.kind.value,
            "name": self.name,
            "actor": self.actor,
            "trigger": self.trigger,
            "expected": self.expected,
            "actual": self.actual,
            "duration_s": self.duration_s,
            "data": self.data,
        }


def action(
    run_id: str,
    at: float,
    name: str,
    *,
    actor: str,
    trigger: str,
    expected: str = "",
    actual: str = "",
    duration_s: float | None = None,
    **data: Any,
) -> Event:
    """An automated action's event: what was expected, what happened, how long it took."""
    return Event(
        run_id=run_id,
        at=at,
        kind=EventKind.ACTION,
        name=name,
        actor=actor,
        trigger=trigger,
        expected=expected,
        actual=actual,
        duration_s=duration_s,
        data=dict(data),
    )


def timeline(run_id: str, at: float, kind: TimelineKind, *, actor: str, **data: Any) -> Event:
    """A human-facing timeline event."""
    return Event(run_id=run_id, at=at, kind=EventKind.TIMELINE, name=kind.value, actor=actor, data=dict(data))


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    drill_name: str
    drill_path: str
    mode: RunMode
    target_key: str
    state: RunState
    created_at: float
    updated_at: float
    pid: int
    host: str
    deadline_at: float
    definition: dict[str, Any]
    experiment: dict[str, Any]
    outcome: Outcome | None = None
    report_dir: str | None = None
    # Ownership: the process writing this run. ``token`` is the fencing token, bumped by each
    # take-over; a writer holding an older token is refused. ``heartbeat_at`` is its last sign of life.
    owner: str = ""
    token: int = 1
    heartbeat_at: float = 0.0


@dataclass(frozen=True)
class SuspensionRecord:
    """One policy of one run: what it was before (to undo) and where it stands now."""

    run_id: str
    policy: str
    kind: str
    target_key: str
    prior: dict[str, Any]
    deadline_at: float
    state: SuspensionState
    updated_at: float
    detail: str = ""
    prior_known: bool = True  # False when the intent was recorded before the prior was read

    def prior_json(self) -> str:
        return json.dumps(self.prior, sort_keys=True)
