"""Finishing a run whose process is gone (SIGKILL, power loss, a laptop lid): roll the fault back,
restore every policy from the journal, and close the run as aborted. Used by ``drill restore``.
"""

from __future__ import annotations

from collections.abc import Callable

from orchestrator import errors, records
from orchestrator.adapters import chaostoolkit
from orchestrator.clock import Clock
from orchestrator.journal import base as journal_base
from orchestrator.restore import restoring
from orchestrator.targets import base as target_base
from orchestrator.targets import registry

S = records.RunState
TL = records.TimelineKind


def _timeline(journal: journal_base.JournalStore, run_id: str, at: float, kind: TL, actor: str, **data: object) -> None:
    journal.append(records.timeline(run_id, at, kind, actor=actor, **data))


def needs_rollback(journal: journal_base.JournalStore, run_id: str) -> bool:
    events = journal.events(run_id)
    injected = any(e.kind is records.EventKind.TRANSITION and e.name == S.INJECTING.value for e in events)
    rolled = any(e.kind is records.EventKind.TIMELINE and e.name == TL.ROLLED_BACK.value for e in events)
    return injected and not rolled


def finish_orphaned_run(
    journal: journal_base.JournalStore,
    run: records.RunRecord,
    *,
    clock: Clock,
    actor: str,
    reason: str,
    target_for: Callable[[str], target_base.Target] = registry.from_key,
) -> restoring.RestoreReport:
    """Roll back, restore and close a run whose own process no longer runs."""
    trigger = f"{actor}: {reason}"
    if run.state.active and run.state not in (S.ABORTING, S.RESTORING, S.REPORTING):
        _timeline(journal, run.run_id, clock.now(), TL.ABORTED, actor, reason=reason)
        journal.set_state(run.run_id, S.ABORTING, actor=actor, trigger=trigger, at=clock.now())
    elif run.state.active:
        _timeline(
            journal, run.run_id, clock.now(), TL.NOTE, actor, text=f"the run stopped while {run.state.value}; {reason}"
        )
    if run.state.active:
        journal.set_state(run.run_id, S.RESTORING, actor=actor, trigger=trigger, at=clock.now())
    if needs_rollback(journal, run.run_id):
        started = clock.now()
        target = target_for(run.target_key)
        try:
            session = chaostoolkit.ExperimentSession(run.experiment, extra_vars=target.experiment_vars())
            try:
                result = session.run_rollbacks()
            finally:
                session.close()
            ok, summary = result.ok, result.summary
        except errors.DrillError as exc:
            ok, summary = False, str(exc)
        now = clock.now()
        journal.append(
            records.action(
                run.run_id,
                now,
                "rollback",
                actor=actor,
                trigger=trigger,
                expected="fault rolled back",
                actual=summary,
                duration_s=now - started,
                ok=ok,
            )
        )
        if ok:
            _timeline(journal, run.run_id, now, TL.ROLLED_BACK, actor)
    report = restoring.restore_run(
        journal, run.run_id, clock=clock, actor=actor, trigger=trigger, target_for=target_for
    )
    if journal.suspensions(run.run_id):
        _timeline(
            journal,
            run.run_id,
            clock.now(),
            TL.RESTORED,
            actor,
            restored=report.restored,
            failed=report.failed,
        )
    if run.state.active:
        journal.set_state(run.run_id, S.REPORTING, actor=actor, trigger=trigger, at=clock.now())
    return report


def outcome_from_timeline(journal: journal_base.JournalStore, run: records.RunRecord) -> records.Outcome:
    """The outcome of a run finished by ``drill restore``, from what its timeline shows."""
    names = {e.name for e in journal.events(run.run_id, kinds=[records.EventKind.TIMELINE])}
    if TL.ABORTED.value in names:
        return records.Outcome.ABORTED
    if TL.TIMED_OUT.value in names:
        return records.Outcome.NOT_RECOVERED if run.mode == "auto-recovery" else records.Outcome.TIMED_OUT
    if run.mode == "auto-recovery" and TL.STEADY_STATE_RESTORED.value in names:
        return records.Outcome.RECOVERED
    if run.mode == "no-automation" and TL.RESOLVED.value in names:
        return records.Outcome.WITH_HINTS if TL.HINT.value in names else records.Outcome.UNAIDED
    return records.Outcome.ABORTED
