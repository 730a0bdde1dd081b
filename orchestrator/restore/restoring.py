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

import functools
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator import errors, hooks, records, redaction
from orchestrator.clock import Clock
from orchestrator.journal import base as journal_base
from orchestrator.policies import base as policy_base
from orchestrator.targets import base as target_base
from orchestrator.targets import registry

SS = records.SuspensionState
CHUNK_PER_WORKER = 8
"""Objects restored per chunk for each request in flight: a chunk's intents and results are one transaction each."""


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

    def update_many(self, items: Sequence[tuple[records.SuspensionRecord, journal_base.SuspensionUpdate]]) -> bool:
        """Suspension updates in one transaction per run (a failed batch is noted like any failed write)."""
        ok = True
        by_run: dict[str, list[journal_base.SuspensionUpdate]] = {}
        for suspension, update in items:
            by_run.setdefault(suspension.run_id, []).append(update)
        for run_id, updates in by_run.items():
            states = sorted({u.state.value for u in updates})
            ok = (
                self.attempt(
                    f"journal {len(updates)} suspension(s) {'/'.join(states)}",
                    functools.partial(self.journal.update_suspensions, run_id, updates, token=self.token),
                )
                and ok
            )
        return ok

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
    [result] = _restore_chunk(
        writer,
        [(suspension, target)],
        clock=clock,
        actor=actor,
        trigger=trigger,
        hooks_dir=hooks_dir,
        force=force,
        pool=None,
    )
    return result


@dataclass
class _Item:
    suspension: records.SuspensionRecord
    suspender: policy_base.Suspender | None = None
    prior: dict[str, Any] | None = None
    started: float = 0.0
    state: records.SuspensionState = SS.FAILED
    detail: str = ""
    event: records.Event | None = None


def _restore_chunk(
    writer: TolerantJournal,
    work: Sequence[tuple[records.SuspensionRecord, target_base.Target | Exception]],
    *,
    clock: Clock,
    actor: str,
    trigger: str,
    hooks_dir: Path | None,
    force: bool,
    pool: ThreadPoolExecutor | None,
) -> list[tuple[records.SuspensionState, str]]:
    """Restore ``work`` together: what to put back (reads), the intents journaled in one transaction per run,
    the restores and read-backs (``pool``: concurrently), then their results in one transaction per run.

    A failure of one object never stops the others; a journal that fails never stops a restore."""

    def run(step: Callable[[Any], _Item], xs: Sequence[Any]) -> list[_Item]:
        return list(pool.map(step, xs)) if pool is not None else [step(x) for x in xs]

    def prepare(pair: tuple[records.SuspensionRecord, target_base.Target | Exception]) -> _Item:
        suspension, target = pair
        item = _Item(suspension, started=clock.now())
        try:
            if isinstance(target, Exception):  # the target could not even be built
                raise target
            item.suspender = target.suspender(suspension.kind, suspension.policy)
            item.prior = _prior_to_restore(suspension, target)
        except Exception as exc:  # the object cannot even be read: this one fails, the others go on
            item.detail = redaction.redact(str(exc)) or type(exc).__name__
        return item

    items: list[_Item] = run(prepare, list(work))

    def intent(
        item: _Item, state: records.SuspensionState, detail: str, name: str, **data: Any
    ) -> tuple[records.SuspensionRecord, journal_base.SuspensionUpdate]:
        s = item.suspension
        event = records.action(s.run_id, item.started, name, actor=actor, trigger=trigger, policy=s.policy, **data)
        return s, journal_base.SuspensionUpdate(s.policy, state, at=item.started, detail=detail, event=event)

    intents: list[tuple[records.SuspensionRecord, journal_base.SuspensionUpdate]] = []
    for item in items:
        if item.suspender is None:
            continue
        if item.prior is None:
            item.state, item.detail = SS.NOT_CLAIMED, "never claimed"
            intents.append(
                intent(
                    item,
                    SS.NOT_CLAIMED,
                    "never claimed: no marker of this run on the object, nothing was changed",
                    "restore",
                    expected="nothing to restore",
                    actual="never claimed: nothing was changed",
                    verified=True,
                )
            )
            continue
        intents.append(
            intent(
                item,
                SS.RESTORING,
                "restore intended",
                "restore.intent",
                expected=item.suspender.describe(item.prior),
                prior=item.prior,
            )
        )
    writer.update_many(intents)

    def act(item: _Item) -> _Item:
        if item.suspender is None or item.prior is None:
            return item
        s, suspender, prior = item.suspension, item.suspender, item.prior
        if hooks_dir is not None:
            hooks.pause_point("restoring", run_id=s.run_id, hooks_dir=hooks_dir)
        gone = False
        try:
            suspender.restore(prior, run_id=s.run_id, force=force)
            verified = suspender.verify_restored(prior, run_id=s.run_id)
            detail = "read back as " + suspender.describe(suspender.snapshot())
        except errors.ObjectGoneError as exc:  # deleted or replaced meanwhile: said, never recreated, settled
            verified, gone, detail = False, True, redaction.redact(str(exc))
        except Exception as exc:  # any failure of one policy must not stop the others
            verified, detail = False, redaction.redact(str(exc)) or type(exc).__name__
        done = clock.now()
        item.state = SS.RESTORED if verified else SS.GONE if gone else SS.FAILED
        item.detail = detail
        item.event = records.action(
            s.run_id,
            done,
            "restore",
            actor=actor,
            trigger=trigger,
            expected=suspender.describe(prior),
            actual=("verified: " if verified else "NOT VERIFIED: ") + detail,
            duration_s=done - item.started,
            policy=s.policy,
            verified=verified,
        )
        return item

    items = run(act, items)
    writer.update_many(
        [
            (
                i.suspension,
                journal_base.SuspensionUpdate(
                    i.suspension.policy, i.state, at=i.event.at, detail=i.detail, event=i.event
                ),
            )
            for i in items
            if i.event is not None
        ]
    )
    for item in items:
        if item.suspender is None:  # unreadable: said in the journal as the others' results are
            writer.append(
                records.action(
                    item.suspension.run_id,
                    clock.now(),
                    "restore",
                    actor=actor,
                    trigger=trigger,
                    actual=f"FAILED: {item.detail}",
                    policy=item.suspension.policy,
                    verified=False,
                )
            )
    return [(i.state, i.detail) for i in items]


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

    workers = max(
        (t.concurrency for t in targets.values() if not isinstance(t, Exception)),
        default=1,
    )
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="drill-restore") as pool:
        for group in _by_policy(list(reversed(list(suspensions)))):
            size = workers * CHUNK_PER_WORKER if workers > 1 else 1
            for start in range(0, len(group), size):
                chunk = group[start : start + size]
                results = _restore_chunk(
                    writer,
                    [(s, targets[s.target_key]) for s in chunk],
                    clock=clock,
                    actor=actor,
                    trigger=trigger,
                    hooks_dir=hooks_dir,
                    force=force,
                    pool=pool if workers > 1 and len(chunk) > 1 else None,
                )
                for suspension, (state, detail) in zip(chunk, results, strict=True):
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
