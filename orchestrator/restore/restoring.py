"""The one restore path. The engine (after resolve, abort, signal, guardrail, timeout or exception),
``drill restore RUN`` and ``drill restore --expired`` all end here.

Restoring comes before everything that can fail for another reason. Journal writes on this path
are *attempted*: a journal that fails (full disk, lost database, damaged file) is noted and the
restores go on, so the caller can tell "restored but not journaled" apart from "not restored".
The one journal error that stops the path is ``OwnershipLostError``: another process has taken
the run over and restores it; this process must write nothing more, anywhere.

Each restore is journaled as intent (``restoring``) before the mutation and as ``restored`` only
after reading the value back; a restore that does not read back is ``failed`` and said loudly.
A suspension whose prior value never reached the journal (the process died between the intent
and the claim) is restored from this run's marker on the object, or found never claimed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator import errors, hooks, records, redaction
from orchestrator.clock import Clock
from orchestrator.journal import base as journal_base
from orchestrator.targets import base as target_base
from orchestrator.targets import registry

SS = records.SuspensionState


@dataclass
class RestoreReport:
    restored: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    not_claimed: list[str] = field(default_factory=list)
    journal_errors: list[str] = field(default_factory=list)
    rollback_problem: str | None = None
    """Set when the fault's rollbacks could not be played (the automation may still be all back)."""

    @property
    def ok(self) -> bool:
        """Every policy is back (restored and verified, or never changed)."""
        return not self.failed

    @property
    def journaled(self) -> bool:
        return not self.journal_errors


class TolerantJournal:
    """Journal writes on the restore path: attempted, failures collected, never raised (but ownership loss)."""

    def __init__(self, journal: journal_base.JournalStore, *, token: int | None, errors_out: list[str]) -> None:
        self.journal = journal
        self.token = token
        self.errors = errors_out

    def attempt(self, what: str, write: Callable[[], object]) -> bool:
        try:
            write()
        except errors.OwnershipLostError:
            raise
        except Exception as exc:  # the journal failing must not stop a restore
            self.errors.append(f"{what}: {redaction.redact(str(exc)) or type(exc).__name__}")
            return False
        return True

    def append(self, event: records.Event) -> bool:
        return self.attempt(f"journal {event.name}", lambda: self.journal.append(event, token=self.token))

    def update(
        self,
        suspension: records.SuspensionRecord,
        state: records.SuspensionState,
        *,
        at: float,
        detail: str,
        event: records.Event,
    ) -> bool:
        return self.attempt(
            f"journal {suspension.policy} {state.value}",
            lambda: self.journal.update_suspension(
                suspension.run_id, suspension.policy, state, at=at, detail=detail, event=event, token=self.token
            ),
        )


def _prior_to_restore(suspension: records.SuspensionRecord, target: target_base.Target) -> dict[str, Any] | None:
    """The value to put back: the journaled prior, else this run's marker's original; None if never claimed."""
    if suspension.prior_known:
        return suspension.prior
    marker = target.suspender(suspension.kind, suspension.policy).marker()
    if marker is not None and marker.run_id == suspension.run_id:
        return marker.original
    return None


def restore_suspension(
    writer: TolerantJournal,
    suspension: records.SuspensionRecord,
    target: target_base.Target,
    *,
    clock: Clock,
    actor: str,
    trigger: str,
    hooks_dir: Path | None = None,
    force: bool = False,
) -> tuple[records.SuspensionState, str]:
    """Restore one policy to its prior value and verify it; returns the state it ended in and why."""
    suspender = target.suspender(suspension.kind, suspension.policy)
    started = clock.now()
    prior = _prior_to_restore(suspension, target)
    if prior is None:
        writer.update(
            suspension,
            SS.NOT_CLAIMED,
            at=started,
            detail="never claimed: no marker of this run on the object, nothing was changed",
            event=records.action(
                suspension.run_id,
                started,
                "restore",
                actor=actor,
                trigger=trigger,
                expected="nothing to restore",
                actual="never claimed: nothing was changed",
                policy=suspension.policy,
                verified=True,
            ),
        )
        return SS.NOT_CLAIMED, "never claimed"
    writer.update(
        suspension,
        SS.RESTORING,
        at=started,
        detail="restore intended",
        event=records.action(
            suspension.run_id,
            started,
            "restore.intent",
            actor=actor,
            trigger=trigger,
            expected=suspender.describe(prior),
            policy=suspension.policy,
            prior=prior,
        ),
    )
    if hooks_dir is not None:
        hooks.pause_point("restoring", run_id=suspension.run_id, hooks_dir=hooks_dir)
    try:
        suspender.restore(prior, run_id=suspension.run_id, force=force)
        verified = suspender.verify_restored(prior, run_id=suspension.run_id)
        detail = "read back as " + suspender.describe(suspender.snapshot())
    except Exception as exc:  # any failure of one policy must not stop the others
        verified, detail = False, redaction.redact(str(exc)) or type(exc).__name__
    done = clock.now()
    state = SS.RESTORED if verified else SS.FAILED
    writer.update(
        suspension,
        state,
        at=done,
        detail=detail,
        event=records.action(
            suspension.run_id,
            done,
            "restore",
            actor=actor,
            trigger=trigger,
            expected=suspender.describe(prior),
            actual=("verified: " if verified else "NOT VERIFIED: ") + detail,
            duration_s=done - started,
            policy=suspension.policy,
            verified=verified,
        ),
    )
    return state, detail


def restore_suspensions(
    journal: journal_base.JournalStore,
    suspensions: Sequence[records.SuspensionRecord],
    *,
    clock: Clock,
    actor: str,
    trigger: str,
    token: int | None,
    hooks_dir: Path | None = None,
    target_for: Callable[[str], target_base.Target] = registry.from_key,
    on_done: Callable[[str, records.SuspensionState], None] | None = None,
    force: bool = False,
) -> RestoreReport:
    """Restore ``suspensions`` in the reverse order of suspension; every one is tried whatever the others do."""
    report = RestoreReport()
    writer = TolerantJournal(journal, token=token, errors_out=report.journal_errors)
    targets: dict[str, target_base.Target] = {}  # one client per target, not one per suspension
    for suspension in reversed(list(suspensions)):
        label = f"{suspension.policy} ({suspension.kind})"
        try:
            target = targets.get(suspension.target_key) or targets.setdefault(
                suspension.target_key, target_for(suspension.target_key)
            )
            state, detail = restore_suspension(
                writer,
                suspension,
                target,
                clock=clock,
                actor=actor,
                trigger=trigger,
                hooks_dir=hooks_dir,
                force=force,
            )
        except errors.OwnershipLostError:
            raise
        except Exception as exc:  # a target that cannot even be built: say so, go on with the others
            state = SS.FAILED
            detail = redaction.redact(str(exc)) or type(exc).__name__
            writer.append(
                records.action(
                    suspension.run_id,
                    clock.now(),
                    "restore",
                    actor=actor,
                    trigger=trigger,
                    actual=f"FAILED: {detail}",
                    policy=suspension.policy,
                    verified=False,
                )
            )
        if state is SS.RESTORED:
            report.restored.append(label)
        elif state is SS.NOT_CLAIMED:
            report.not_claimed.append(label)
        else:
            report.failed.append(f"{label}: {detail}")
        if on_done is not None:
            on_done(label, state)
    return report


def expired_suspensions(journal: journal_base.JournalStore, *, now: float) -> list[records.SuspensionRecord]:
    return [s for s in journal.suspensions(unrestored=True) if s.deadline_at <= now]
