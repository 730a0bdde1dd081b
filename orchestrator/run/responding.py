"""The ``responding`` phase: watch the steady state, take responder commands, enforce guardrails.

One loop, ticking every ``Timing.command_poll_s``. Each tick: the simulated responder's due
steps, new commands from the journal (typed in any terminal), the steady-state probes every
``detection.interval`` (breach -> detected; holding for ``holdWindow`` -> mitigated, timed to the
start of the window), guardrail probes every ``guardrails.checkInterval``, timed hints, then the
end conditions: resolved, aborted, recovered, or max duration (timed out, censored timings).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from orchestrator import errors, hooks, records
from orchestrator.adapters import chaostoolkit
from orchestrator.definitions import models
from orchestrator.run import autorespond

if TYPE_CHECKING:
    from orchestrator.run.engine import Engine

TL = records.TimelineKind
C = records.Command


@dataclass
class Watch:
    """What the loop has seen so far."""

    detected: bool = False
    hold_start: float | None = None
    restored_at: float | None = None
    resolved: bool = False
    acknowledged: bool = False
    hints_given: set[int] = field(default_factory=set)
    last_seq: int = 0


def respond(engine: Engine, session: chaostoolkit.ExperimentSession) -> None:
    spec = engine.spec
    if spec.mode is models.Mode.CHAOS:
        _chaos(engine, session)
        return
    hooks.pause_point("responding", run_id=engine.run_id, hooks_dir=engine.paths.hooks_dir)
    watch = Watch(last_seq=_last_seq(engine))
    engine.watch = watch
    humans = spec.mode is models.Mode.NO_AUTOMATION
    pending = list(engine.auto_respond or []) if humans else []
    timed_hints = sorted((h.after, i) for i, h in enumerate(spec.hints) if h.after is not None)
    run_end = engine.started_at + spec.guardrails.max_duration
    t0 = engine.t0
    assert t0 is not None, "responding starts only once the fault is active"
    next_check = t0
    next_guard = t0 + spec.guardrails.check_interval
    while True:
        now = engine.clock.now()
        while pending and now >= t0 + pending[0].delay_s:
            _simulate(engine, pending.pop(0))
        for command in engine.journal.events(
            engine.run_id, after_seq=watch.last_seq, kinds=[records.EventKind.COMMAND]
        ):
            watch.last_seq = command.seq
            _apply(engine, watch, command, humans=humans)
        if engine.stop.is_set():
            return
        if now >= next_check:
            _check_steady_state(engine, watch, session, now)
            next_check = now + spec.detection.interval
        if now >= next_guard and spec.guardrails.abort_when:
            _check_guardrails(engine, session)
            next_guard = now + spec.guardrails.check_interval
            if engine.stop.is_set():
                return
        for after, index in timed_hints:
            if index not in watch.hints_given and now >= t0 + after:
                _give_hint(engine, watch, index, actor="drill", trigger=f"timed hint after {after:g}s")
        if not humans and watch.restored_at is not None:
            return
        if watch.resolved and (watch.restored_at is not None or watch.hold_start is None):
            return
        if now >= run_end:
            engine.timed_out = True
            engine.timeline(TL.TIMED_OUT, max_duration_s=spec.guardrails.max_duration)
            return
        wait = min(engine.timing.command_poll_s, max(0.0, next_check - engine.clock.now()), max(0.0, run_end - now))
        engine.clock.wait(engine.stop, wait if wait > 0 else 0.01)


def _last_seq(engine: Engine) -> int:
    events = engine.journal.events(engine.run_id)
    return events[-1].seq if events else 0


def _simulate(engine: Engine, step: autorespond.Step) -> None:
    responder = next((p.name for p in engine.spec.participants if p.role is models.Role.RESPONDER), "responder")
    text = ""
    if step.command is C.MITIGATED:
        text = engine.target.simulate_mitigation()
    elif step.command is C.DIAGNOSED:
        text = "simulated diagnosis: the service process is down and nothing restarts it"
    engine.journal.append(
        records.Event(
            run_id=engine.run_id,
            at=engine.clock.now(),
            kind=records.EventKind.COMMAND,
            name=step.command.value,
            actor=f"{responder} (simulated)",
            trigger="--auto-respond",
            data={"text": text} if text else {},
        )
    )


def _apply(engine: Engine, watch: Watch, command: records.Event, *, humans: bool) -> None:
    name = records.Command(command.name)
    text = str(command.data.get("text", ""))
    extra = {"text": text} if text else {}
    if name is C.ABORT:
        engine.timeline(TL.NOTE, actor=command.actor, at=command.at, text=f"abort requested. {text}".strip())
        engine.request_abort(f"aborted by {command.actor}" + (f": {text}" if text else ""))
    elif name is C.NOTE:
        engine.timeline(TL.NOTE, actor=command.actor, at=command.at, **extra)
    elif not humans:
        engine.timeline(
            TL.NOTE,
            actor=command.actor,
            at=command.at,
            text=f"ignored {name.value}: no humans respond in this mode",
        )
    elif name is C.ACK:
        engine.timeline(TL.ACKNOWLEDGED, actor=command.actor, at=command.at, **extra)
        watch.acknowledged = True
    elif name is C.DIAGNOSED:
        engine.timeline(TL.DIAGNOSED, actor=command.actor, at=command.at, **extra)
    elif name is C.MITIGATED:
        engine.timeline(TL.MITIGATED, actor=command.actor, at=command.at, **extra)
    elif name is C.RESOLVE:
        engine.timeline(TL.RESOLVED, actor=command.actor, at=command.at, **extra)
        watch.resolved = True
    elif name is C.HINT:
        remaining = [i for i in range(len(engine.spec.hints)) if i not in watch.hints_given]
        if remaining:
            _give_hint(engine, watch, remaining[0], actor=command.actor, trigger="requested")
        else:
            engine.timeline(TL.NOTE, actor="drill", text="no more hints")


def _give_hint(engine: Engine, watch: Watch, index: int, *, actor: str, trigger: str) -> None:
    watch.hints_given.add(index)
    engine.timeline(TL.HINT, actor=actor, number=index + 1, text=engine.spec.hints[index].text, trigger=trigger)


def _check_steady_state(engine: Engine, watch: Watch, session: chaostoolkit.ExperimentSession, now: float) -> None:
    result = session.steady_state()
    if not result.ok:
        if not watch.detected:
            watch.detected = True
            engine.timeline(TL.DETECTED, at=now, by="steady-state probes", detail=result.summary)
        watch.hold_start = None
        return
    if not watch.detected or watch.restored_at is not None:
        return
    if watch.hold_start is None:
        watch.hold_start = now
    if now - watch.hold_start >= engine.spec.detection.hold_window:
        watch.restored_at = watch.hold_start
        engine.timeline(
            TL.STEADY_STATE_RESTORED,
            at=watch.hold_start,
            hold_window_s=engine.spec.detection.hold_window,
            confirmed_at=now,
        )


def _check_guardrails(engine: Engine, session: chaostoolkit.ExperimentSession) -> None:
    for probe in engine.spec.guardrails.abort_when:
        started = engine.clock.now()
        try:
            result = session.check_probe(probe.activity())
            ok, summary = result.ok, result.summary
        except errors.DrillError as exc:
            ok, summary = False, str(exc)
        engine.action(
            "guardrail",
            trigger="guardrail check",
            expected=f"{probe.name} within tolerance",
            actual=summary,
            started=started,
            ok=ok,
        )
        if not ok:
            engine.request_abort(f"guardrail {probe.name!r} breached: {summary}")
            return


def _chaos(engine: Engine, session: chaostoolkit.ExperimentSession) -> None:
    result = session.steady_state()
    engine.chaos_held = result.ok
    if not result.ok:
        engine.timeline(TL.DETECTED, by="steady-state probes", detail=result.summary)
    engine.action(
        "hypothesis.after",
        trigger="responding",
        expected="steady state holds after the method",
        actual=result.summary,
        started=engine.clock.now(),
        ok=result.ok,
    )


def outcome(engine: Engine) -> records.Outcome:
    mode = engine.spec.mode
    watch = engine.watch
    if mode is models.Mode.CHAOS:
        return records.Outcome.HYPOTHESIS_HELD if engine.chaos_held else records.Outcome.DEVIATED
    if mode is models.Mode.AUTO_RECOVERY:
        ok = watch is not None and watch.restored_at is not None
        return records.Outcome.RECOVERED if ok else records.Outcome.NOT_RECOVERED
    if engine.timed_out or watch is None or not watch.resolved:
        return records.Outcome.TIMED_OUT
    return records.Outcome.WITH_HINTS if watch.hints_given else records.Outcome.UNAIDED
