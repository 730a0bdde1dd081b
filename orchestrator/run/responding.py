"""The ``responding`` phase: watch the steady state, take responder commands, enforce guardrails.

It takes a narrow ``Context`` (what it may read and the few things it may do) and returns a
``Result``; it knows nothing of the engine. One loop, ticking every ``Timing.command_poll_s``.
Each tick: the simulated responder's due steps, new commands from the journal (typed in any
terminal, on any machine sharing the journal, delivered once each in commit order), the
steady-state probes every ``detection.interval`` (breach -> detected; holding for
``holdWindow`` -> mitigated, timed to the start of the window), guardrail probes every
``guardrails.checkInterval``, timed hints, then the end conditions: resolved, aborted,
recovered, or max duration (timed out, censored timings).

A Kubernetes drill that declares ``detection.conditions`` watches them instead of polling the probes:
the breach and the start of the hold window are the receipt times of the watch events that made the
conditions false and true again, and the loop wakes on every change of the watch (and at the end of
the hold window) instead of sleeping until the next check.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from orchestrator import errors, records
from orchestrator.adapters import chaostoolkit
from orchestrator.clock import Clock
from orchestrator.definitions import models
from orchestrator.run import autorespond, interrupting

if TYPE_CHECKING:
    from orchestrator.adapters import kubewatch

TL = records.TimelineKind
C = records.Command
T = TypeVar("T")


class Probes(Protocol):
    """The part of an experiment session the loop uses."""

    def steady_state(self) -> chaostoolkit.StepResult: ...
    def check_probe(self, activity: dict[str, Any]) -> chaostoolkit.StepResult: ...


class Watch(Protocol):
    """A watch of the steady state's conditions (``adapters.kubewatch.ConditionWatch``)."""

    def start(self) -> None: ...
    def state(self) -> kubewatch.State: ...
    def wait_change(self, version: int, timeout: float) -> kubewatch.State: ...
    def close(self) -> None: ...


def _no_watch() -> Watch | None:
    return None


@dataclass(frozen=True, kw_only=True)
class Context:
    """What the responding phase may read and do; given by the engine, nothing more."""

    run_id: str
    spec: models.Spec
    clock: Clock
    stop: threading.Event
    t0: float
    started_at: float
    poll_s: float
    probes: Probes
    take_commands: Callable[[], list[records.Event]]
    send_command: Callable[[records.Event], None]
    timeline: Callable[..., None]
    action: Callable[..., None]
    request_abort: Callable[[str], None]
    simulate_mitigation: Callable[[], str]
    auto_respond: list[autorespond.Step] = field(default_factory=list)
    watch: Callable[[], Watch | None] = _no_watch
    """Builds the watch of ``detection.conditions`` (not started); None: the probes are polled."""


@dataclass
class Result:
    """What the loop saw; the outcome itself is derived from the journal (``orchestrator.outcomes``)."""

    detected: bool = False
    hold_start: float | None = None
    restored_at: float | None = None
    resolved: bool = False
    acknowledged: bool = False
    timed_out: bool = False
    hints_given: set[int] = field(default_factory=set)


def respond(ctx: Context) -> Result:
    if ctx.spec.mode is models.Mode.CHAOS:
        return _chaos(ctx)
    watch = ctx.watch() if ctx.spec.detection.conditions else None
    if watch is None:
        return _respond(ctx, None)
    watch.start()
    try:
        return _respond(ctx, watch)
    finally:
        watch.close()


def _respond(ctx: Context, watch: Watch | None) -> Result:
    spec = ctx.spec
    seen = Result()
    humans = spec.mode is models.Mode.NO_AUTOMATION
    pending = list(ctx.auto_respond) if humans else []
    timed_hints = sorted((h.after, i) for i, h in enumerate(spec.hints) if h.after is not None)
    run_end = ctx.started_at + spec.guardrails.max_duration
    next_check = ctx.t0
    next_guard = ctx.t0 + spec.guardrails.check_interval
    version = -1  # the watch's state last looked at
    while True:
        now = ctx.clock.now()
        while pending and now >= ctx.t0 + pending[0].delay_s:
            _simulate(ctx, pending.pop(0))
        for command in ctx.take_commands():
            _apply(ctx, seen, command, humans=humans)
        if ctx.stop.is_set():
            return seen
        if watch is not None:
            state = watch.state()
            version = state.version
            _check_watch(ctx, seen, state, now)
        elif now >= next_check:
            _check_steady_state(ctx, seen, now)
            next_check = now + spec.detection.interval
        if now >= next_guard and spec.guardrails.abort_when:
            _check_guardrails(ctx)
            next_guard = now + spec.guardrails.check_interval
            if ctx.stop.is_set():
                return seen
        for after, index in timed_hints:
            if index not in seen.hints_given and now >= ctx.t0 + after:
                _give_hint(ctx, seen, index, actor="drill", trigger=f"timed hint after {after:g}s")
        if not humans and seen.restored_at is not None:
            return seen
        if seen.resolved and (seen.restored_at is not None or seen.hold_start is None):
            return seen
        if now >= run_end:
            seen.timed_out = True
            ctx.timeline(TL.TIMED_OUT, max_duration_s=spec.guardrails.max_duration)
            return seen
        later = ctx.clock.now()
        if watch is None:
            wait = min(ctx.poll_s, max(0.0, next_check - later), max(0.0, run_end - later))
            ctx.clock.wait(ctx.stop, wait if wait > 0 else 0.01)
            continue
        wait = min(ctx.poll_s, max(0.0, run_end - later))  # commands and an abort are still looked at every poll
        if seen.hold_start is not None and seen.restored_at is None:
            wait = min(wait, max(0.0, seen.hold_start + spec.detection.hold_window - later))
        watch.wait_change(version, wait if wait > 0 else 0.01)


def _simulate(ctx: Context, step: autorespond.Step) -> None:
    responder = next((p.name for p in ctx.spec.participants if p.role is models.Role.RESPONDER), "responder")
    text = ""
    if step.command is C.MITIGATED:
        text = ctx.simulate_mitigation()
    elif step.command is C.DIAGNOSED:
        text = "simulated diagnosis: the fault is found, and nothing repairs it while the automation is off"
    ctx.send_command(
        records.Event(
            run_id=ctx.run_id,
            at=ctx.clock.now(),
            kind=records.EventKind.COMMAND,
            name=step.command.value,
            actor=f"{responder} (simulated)",
            trigger="--auto-respond",
            data={"text": text} if text else {},
        )
    )


def _apply(ctx: Context, seen: Result, command: records.Event, *, humans: bool) -> None:
    try:
        name = records.Command(command.name)
    except ValueError:
        ctx.timeline(TL.NOTE, actor="drill", text=f"ignored unknown command {command.name!r}")
        return
    text = str(command.data.get("text", ""))
    extra = {"text": text} if text else {}
    if name is C.ABORT:
        ctx.timeline(TL.NOTE, actor=command.actor, at=command.at, text=f"abort requested. {text}".strip())
        ctx.request_abort(f"aborted by {command.actor}" + (f": {text}" if text else ""))
    elif name is C.NOTE:
        ctx.timeline(TL.NOTE, actor=command.actor, at=command.at, **extra)
    elif not humans:
        ctx.timeline(
            TL.NOTE, actor=command.actor, at=command.at, text=f"ignored {name.value}: no humans respond in this mode"
        )
    elif name is C.ACK:
        ctx.timeline(TL.ACKNOWLEDGED, actor=command.actor, at=command.at, **extra)
        seen.acknowledged = True
    elif name is C.DIAGNOSED:
        ctx.timeline(TL.DIAGNOSED, actor=command.actor, at=command.at, **extra)
    elif name is C.MITIGATED:
        ctx.timeline(TL.MITIGATED, actor=command.actor, at=command.at, **extra)
    elif name is C.RESOLVE:
        ctx.timeline(TL.RESOLVED, actor=command.actor, at=command.at, **extra)
        seen.resolved = True
    elif name is C.HINT:
        remaining = [i for i in range(len(ctx.spec.hints)) if i not in seen.hints_given]
        if remaining:
            _give_hint(ctx, seen, remaining[0], actor=command.actor, trigger="requested")
        else:
            ctx.timeline(TL.NOTE, actor="drill", text="no more hints")


def _give_hint(ctx: Context, seen: Result, index: int, *, actor: str, trigger: str) -> None:
    seen.hints_given.add(index)
    ctx.timeline(TL.HINT, actor=actor, number=index + 1, text=ctx.spec.hints[index].text, trigger=trigger)


def _interruptible(ctx: Context, probe: Callable[[], T]) -> T | None:
    """A probe the loop walks away from on abort (None): a slow probe must not hold an abort back."""
    return interrupting.until_done_or_stopped(probe, stop=ctx.stop, poll_s=0.05, name="drill-probe")[1]


def _check_steady_state(ctx: Context, seen: Result, now: float) -> None:
    result = _interruptible(ctx, ctx.probes.steady_state)
    if result is None:
        return
    if not result.ok:
        if not seen.detected:
            seen.detected = True
            ctx.timeline(TL.DETECTED, at=now, by="steady-state probes", detail=result.summary)
        seen.hold_start = None
        return
    _holding(ctx, seen, since=now if seen.hold_start is None else seen.hold_start, now=now, watched=False)


def _check_watch(ctx: Context, seen: Result, state: kubewatch.State, now: float) -> None:
    """The watch's view: the breach and the start of the hold window are the receipt times of its events."""
    if not state.known:
        return
    if state.breached_at is not None and not seen.detected:
        seen.detected = True
        ctx.timeline(TL.DETECTED, at=state.breached_at, by="watched conditions", detail=state.breach_detail)
    if not state.holds or state.since is None:
        seen.hold_start = None
        return
    _holding(ctx, seen, since=state.since, now=now, watched=True)


def _holding(ctx: Context, seen: Result, *, since: float, now: float, watched: bool) -> None:
    """The steady state holds (since ``since``): mitigated, or recovered, once it has held for the hold window."""
    # With no human, automation may repair the fault before the first check can see it (an operator reacts
    # in a tenth of a second): the steady state holding from the first check on is a recovery too, timed to
    # that check (an upper bound) and said so. With humans, only a breach that was seen can be mitigated.
    unseen = not seen.detected and ctx.spec.mode is models.Mode.AUTO_RECOVERY
    if (not seen.detected and not unseen) or seen.restored_at is not None:
        return
    seen.hold_start = since
    if now - seen.hold_start >= ctx.spec.detection.hold_window:
        seen.restored_at = seen.hold_start
        extra = {"breach_seen": False} if unseen else {}
        ctx.timeline(
            TL.STEADY_STATE_RESTORED,
            at=seen.hold_start,
            hold_window_s=ctx.spec.detection.hold_window,
            confirmed_at=now,
            **extra,
        )
        if unseen:
            ctx.timeline(
                TL.NOTE,
                at=now,
                text=(
                    "the watched conditions held from the watch's first list after the fault: it recovered before "
                    "the watch started (the recovery time is an upper bound), or the fault broke nothing it watches"
                    if watched
                    else "the steady state held at every check after the fault: it recovered before the first check "
                    "could see a breach (the recovery time is an upper bound), or the fault broke nothing it watches"
                ),
            )


def _check_guardrails(ctx: Context) -> None:
    for probe in ctx.spec.guardrails.abort_when:
        started = ctx.clock.now()
        activity = probe.activity()
        try:
            result = _interruptible(ctx, lambda: ctx.probes.check_probe(activity))  # noqa: B023 (called at once)
            if result is None:
                return
            ok, summary = result.ok, result.summary
        except errors.DrillError as exc:
            ok, summary = False, str(exc)
        ctx.action(
            "guardrail",
            trigger="guardrail check",
            expected=f"{probe.name} within tolerance",
            actual=summary,
            started=started,
            ok=ok,
        )
        if not ok:
            ctx.request_abort(f"guardrail {probe.name!r} breached: {summary}")
            return


def _chaos(ctx: Context) -> Result:
    result = ctx.probes.steady_state()
    if not result.ok:
        ctx.timeline(TL.DETECTED, by="steady-state probes", detail=result.summary)
    ctx.action(
        "hypothesis.after",
        trigger="responding",
        expected="steady state holds after the method",
        actual=result.summary,
        started=ctx.clock.now(),
        ok=result.ok,
    )
    return Result(detected=not result.ok)
