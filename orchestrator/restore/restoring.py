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

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
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
    gone: list[str] = field(default_factory=list)
    """Objects deleted or replaced during the drill: nothing left to restore there, never recreated."""
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
        self._one_at_a_time = threading.Lock()  # restores fan out to threads; their journal writes queue here

    def attempt(self, what: str, write: Callable[[], object]) -> bool:
        try:
            with self._one_at_a_time:
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
    gone = False
    try:
        suspender.restore(prior, run_id=suspension.run_id, force=force)
        verified = suspender.verify_restored(prior, run_id=suspension.run_id)
        detail = "read back as " + suspender.describe(suspender.snapshot())
    except errors.ObjectGoneError as exc:  # deleted or replaced meanwhile: said, never recreated, settled
        verified, gone, detail = False, True, redaction.redact(str(exc))
    except Exception as exc:  # any failure of one policy must not stop the others
        verified, detail = False, redaction.redact(str(exc)) or type(exc).__name__
    done = clock.now()
    state = SS.RESTORED if verified else SS.GONE if gone else SS.FAILED
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
    """Restore ``suspensions`` in the reverse order of suspension; every one is tried whatever the others do.

    Policies are restored one after another, last suspended first; the objects of one policy (a label
    selector's many) are restored together, up to the target's ``concurrency`` requests in flight.
    """
    report = RestoreReport()
    writer = TolerantJournal(journal, token=token, errors_out=report.journal_errors)
    targets: dict[str, target_base.Target | Exception] = {}  # one client per target, not one per suspension
    for suspension in suspensions:
        if suspension.target_key not in targets:
            try:
                targets[suspension.target_key] = target_for(suspension.target_key)
            except Exception as exc:  # a target that cannot even be built: its suspensions fail below
                targets[suspension.target_key] = exc

    def one(suspension: records.SuspensionRecord) -> tuple[records.SuspensionState, str]:
        try:
            target = targets[suspension.target_key]
            if isinstance(target, Exception):
                raise target
            return restore_suspension(
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
        except Exception as exc:  # say so, go on with the others
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
            return SS.FAILED, detail

    workers = max(
        (t.concurrency for t in targets.values() if not isinstance(t, Exception)),
        default=1,
    )
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="drill-restore") as pool:
        for group in _by_policy(list(reversed(list(suspensions)))):
            results = pool.map(one, group) if workers > 1 and len(group) > 1 else map(one, group)
            for suspension, (state, detail) in zip(group, results, strict=True):
                label = f"{suspension.policy} ({suspension.kind})"
                if state is SS.RESTORED:
                    report.restored.append(label)
                elif state is SS.NOT_CLAIMED:
                    report.not_claimed.append(label)
                elif state is SS.GONE:
                    report.gone.append(f"{label}: {detail}")
                else:
                    report.failed.append(f"{label}: {detail}")
                if on_done is not None:
                    on_done(label, state)
    return report


def _by_policy(ordered: list[records.SuspensionRecord]) -> list[list[records.SuspensionRecord]]:
    """Consecutive suspensions of one policy (``<policy>:<object>`` units of one selector) grouped, in order."""
    groups: list[list[records.SuspensionRecord]] = []
    for suspension in ordered:
        policy = suspension.policy.split(":", 1)[0] if ":" in suspension.policy else None
        last = groups[-1][-1].policy if groups else None
        if policy is not None and last is not None and ":" in last and last.split(":", 1)[0] == policy:
            groups[-1].append(suspension)
        else:
            groups.append([suspension])
    return groups


def expired_suspensions(journal: journal_base.JournalStore, *, now: float) -> list[records.SuspensionRecord]:
    return [s for s in journal.suspensions(unrestored=True) if s.deadline_at <= now]
