"""Finishing a run whose process is gone or hung (SIGKILL, power loss, a laptop lid, a hung probe):
take the run over, restore every policy from the journal, roll the fault back, close it as aborted.
Used by ``drill restore`` and ``drill abort`` of a dead run.

Taking over is a compare-and-set on the run's ownership record: of two ``drill restore`` started
together, one wins and the other is told so; a hung engine that wakes up after the take-over finds
its token stale and writes nothing more.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from orchestrator import errors, processes, records, redaction
from orchestrator.adapters import chaostoolkit
from orchestrator.clock import Clock, iso
from orchestrator.journal import base as journal_base
from orchestrator.restore import restoring
from orchestrator.targets import base as target_base
from orchestrator.targets import registry

S = records.RunState
TL = records.TimelineKind
RESTORER = "drill restore"  # how a run's owner record reads while `drill restore` holds it


@dataclass(frozen=True)
class Liveness:
    """What the ownership record says about the run's own process."""

    alive: bool
    expired: bool
    detail: str


def liveness(run: records.RunRecord, *, now: float, lease_s: float) -> Liveness:
    """Alive = its heartbeat is fresher than ``lease_s`` (works across hosts sharing the journal)."""
    age = now - run.heartbeat_at if run.heartbeat_at else None
    expired = run.deadline_at <= now
    if run.state.active and processes.owner_gone(run.owner):
        return Liveness(False, expired, f"its process ({run.owner}) is gone")
    alive = run.state.active and age is not None and age < lease_s
    beat = "no heartbeat recorded" if age is None else f"last heartbeat {age:.0f}s ago"
    owner = f" by {run.owner}" if run.owner else ""
    return Liveness(alive, expired, f"{beat}{owner}, deadline {iso(run.deadline_at)}")


def take_over(journal: journal_base.JournalStore, run: records.RunRecord, *, clock: Clock, actor: str) -> int:
    """The new fencing token, or OwnershipLostError when someone else moved it first."""
    return journal.take_over(
        run.run_id, owner=f"{actor} {processes.owner_id()}", expected_token=run.token, at=clock.now()
    )


def needs_rollback(journal: journal_base.JournalStore, run_id: str) -> bool:
    events = journal.events(run_id)
    injected = any(e.kind is records.EventKind.TRANSITION and e.name == S.INJECTING.value for e in events)
    rolled = any(e.kind is records.EventKind.TIMELINE and e.name == TL.ROLLED_BACK.value for e in events)
    return injected and not rolled


def play_rollbacks(
    writer: restoring.TolerantJournal,
    run_id: str,
    rollbacks: Callable[[], chaostoolkit.StepResult],
    *,
    clock: Clock,
    actor: str,
    trigger: str,
) -> bool:
    """Play the experiment's rollbacks and journal them (tolerantly); True when they succeeded."""
    started = clock.now()
    try:
        result = rollbacks()
        ok, summary = result.ok, result.summary
    except Exception as exc:  # rollbacks come after every policy is restored; report, never raise
        ok, summary = False, redaction.redact(str(exc)) or type(exc).__name__
    now = clock.now()
    writer.append(
        records.action(
            run_id,
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
        writer.append(records.timeline(run_id, now, TL.ROLLED_BACK, actor=actor))
    return ok


def run_rollbacks(
    writer: restoring.TolerantJournal,
    run: records.RunRecord,
    experiment: dict[str, object],
    target: target_base.Target,
    *,
    clock: Clock,
    actor: str,
    trigger: str,
) -> bool:
    """Play the rollbacks of a run whose own process is gone, in a session of this process."""

    def rollbacks() -> chaostoolkit.StepResult:
        target.prepare_experiment()  # the run's cluster and context, never whatever kubeconfig is current here
        session = chaostoolkit.ExperimentSession(experiment, extra_vars=target.experiment_vars())
        try:
            return session.run_rollbacks()
        finally:
            session.close()

    return play_rollbacks(writer, run.run_id, rollbacks, clock=clock, actor=actor, trigger=trigger)


def finish_orphaned_run(
    journal: journal_base.JournalStore,
    run: records.RunRecord,
    *,
    token: int,
    clock: Clock,
    actor: str,
    reason: str,
    target_for: Callable[[str], target_base.Target] = registry.from_key,
    force: bool = False,
) -> restoring.RestoreReport:
    """Restore every policy (first), then roll the fault back, of a run this process has taken over.

    ``force``: overwrite suspended fields someone changed during the drill (``drill restore --force``)."""
    trigger = f"{actor}: {reason}"
    suspensions = journal.suspensions(run.run_id, unrestored=True)
    rollback = needs_rollback(journal, run.run_id)
    report = restoring.restore_suspensions(
        journal,
        suspensions,
        clock=clock,
        actor=actor,
        trigger=trigger,
        token=token,
        target_for=target_for,
        force=force,
    )
    writer = restoring.TolerantJournal(journal, token=token, errors_out=report.journal_errors)
    if run.state.active and run.state not in (S.ABORTING, S.RESTORING, S.REPORTING):
        writer.append(records.timeline(run.run_id, clock.now(), TL.ABORTED, actor=actor, reason=reason))
        writer.attempt(
            "journal aborting",
            lambda: journal.set_state(
                run.run_id, S.ABORTING, actor=actor, trigger=trigger, at=clock.now(), token=token
            ),
        )
    elif run.state.active:
        text = f"the run stopped while {run.state.value}; {reason}"
        writer.append(records.timeline(run.run_id, clock.now(), TL.NOTE, actor=actor, text=text))
    if run.state.active and run.state is not S.RESTORING:
        writer.attempt(
            "journal restoring",
            lambda: journal.set_state(
                run.run_id, S.RESTORING, actor=actor, trigger=trigger, at=clock.now(), token=token
            ),
        )
    if suspensions:
        writer.append(
            records.timeline(
                run.run_id, clock.now(), TL.RESTORED, actor=actor, restored=report.restored, failed=report.failed
            )
        )
    if rollback:
        try:
            target = target_for(run.target_key)
        except errors.DrillError as exc:
            writer.append(
                records.action(
                    run.run_id, clock.now(), "rollback", actor=actor, trigger=trigger, actual=str(exc), ok=False
                )
            )
            report.rollback_problem = f"cannot roll the fault back: {exc}"
        else:
            if not run_rollbacks(writer, run, run.experiment, target, clock=clock, actor=actor, trigger=trigger):
                report.rollback_problem = "a rollback of the fault failed"
    return report
