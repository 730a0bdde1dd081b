"""The ``suspending`` phase: claim each policy atomically, record its prior, suspend it, read it back.

Write-ahead: the intent is durable before the object is touched. The prior value is read in the
same atomic step that claims the object (the marker), so it can never be another run's suspended
value; the marker carries it until the journal does (``record_prior``, written once).

``Suspensions`` keeps, in the run's own memory, everything the restore path needs: the restore
never depends on reading the journal back.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from orchestrator import errors, hooks, records
from orchestrator.clock import Clock
from orchestrator.journal import base as journal_base
from orchestrator.policies import base as policy_base
from orchestrator.targets import base as target_base

SS = records.SuspensionState
T = TypeVar("T")
BATCH_PER_WORKER = 8
"""Objects per batch for each request in flight: a batch's intents, priors and states are one transaction each."""


class ClaimRefusedError(errors.DrillError):
    """The run's first claim was refused by another run's marker: nothing of this run was changed."""


@dataclass(frozen=True, kw_only=True)
class Context:
    """What suspending may use: the run's identity, its journal (fenced by ``token``), its target."""

    run_id: str
    token: int
    deadline_at: float
    journal: journal_base.JournalStore
    target: target_base.Target
    clock: Clock
    hooks_dir: Path
    request_abort: Callable[[str], None]
    show: Callable[[records.Event], None]


class Suspensions:
    """The policies this run intends to suspend or has suspended, in order."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.claimed: list[records.SuspensionRecord] = []

    def __bool__(self) -> bool:
        return bool(self.claimed)

    def suspend(self, suspender: policy_base.Suspender) -> None:
        """Suspend one unit (a policy's object); ClaimRefusedError when it is the first and another run holds it."""
        self.suspend_all([suspender], concurrency=1)

    def suspend_all(
        self, units: Sequence[policy_base.Suspender], *, concurrency: int, stop: threading.Event | None = None
    ) -> None:
        """Suspend ``units`` in order, ``concurrency`` requests in flight, in batches.

        Per batch: the intents in one journal transaction (write-ahead: no object of the batch is touched
        before), then the claims together, the priors they read in one transaction, then suspend and read
        back together, and the states in one transaction. A set ``stop`` starts no new batch; a failure
        ends the phase after its batch is journaled (the engine then restores what was claimed).
        ClaimRefusedError when another run holds the first objects and nothing of this run was claimed.
        """
        size = max(1, concurrency) * BATCH_PER_WORKER if concurrency > 1 else 1
        with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="drill-suspend") as pool:
            for start in range(0, len(units), size):
                if stop is not None and stop.is_set():
                    return
                if not self._batch(list(units[start : start + size]), pool):
                    return

    def _batch(self, units: list[policy_base.Suspender], pool: ThreadPoolExecutor) -> bool:
        """One batch; False when the phase must end here (a refused claim was turned into an abort)."""
        ctx = self.ctx
        started = ctx.clock.now()
        intents = [self._intent(u, started) for u in units]
        ctx.journal.record_intents(
            [
                (
                    intent,
                    records.action(
                        ctx.run_id,
                        started,
                        "suspend.intent",
                        actor="drill",
                        trigger="suspending",
                        expected=u.describe(u.suspended_value()) if len(units) == 1 else u.kind,
                        actual="intent recorded",
                        policy=u.name,
                        deadline_at=ctx.deadline_at,
                    ),
                )
                for u, intent in zip(units, intents, strict=True)
            ],
            token=ctx.token,
        )
        first = len(self.claimed)
        self.claimed.extend(intents)
        marker = policy_base.Marker(ctx.run_id, "", "", {}, ctx.deadline_at)
        claims = list(
            pool.map(
                lambda u: _attempt(lambda: u.claim(dataclasses.replace(marker, policy=u.name, kind=u.kind))), units
            )
        )
        priors: list[tuple[str, dict[str, Any]]] = []
        refused: list[str] = []
        failure: BaseException | None = None
        for offset, (unit, (prior, exc)) in enumerate(zip(units, claims, strict=True)):
            if isinstance(exc, errors.MarkerConflictError):
                refused.append(str(exc))
            elif exc is not None:
                failure = failure or exc
            else:
                assert prior is not None
                self.claimed[first + offset] = dataclasses.replace(intents[offset], prior=prior, prior_known=True)
                priors.append((unit.name, prior))
        if priors:
            ctx.journal.record_priors(ctx.run_id, priors, token=ctx.token)
        if refused and not any(s.prior_known for s in self.claimed):
            raise ClaimRefusedError(refused[0])  # nothing changed yet: a failed preflight
        if failure is not None:
            raise failure
        claimed = [(u, prior) for u, (prior, exc) in zip(units, claims, strict=True) if exc is None]
        outcomes = list(pool.map(self._suspend_and_verify, claimed))
        updates: list[journal_base.SuspensionUpdate] = []
        for (unit, _), (event, exc) in zip(claimed, outcomes, strict=True):
            if event is None:
                failure = failure or exc
                continue
            updates.append(
                journal_base.SuspensionUpdate(
                    unit.name,
                    SS.SUSPENDED,
                    at=event.at,
                    detail="verified" if event.data.get("verified") else "not verified",
                    event=event,
                )
            )
        ctx.journal.update_suspensions(ctx.run_id, updates, token=ctx.token)
        for update in updates:
            ctx.show(update.event)
        if failure is not None:
            raise failure
        unverified = [u.policy for u in updates if not u.event.data.get("verified")]
        if unverified:
            ctx.request_abort(f"policy {unverified[0]} did not read back as suspended")
            return False
        if refused:
            ctx.request_abort(refused[0])
            return False
        return True

    def _intent(self, unit: policy_base.Suspender, at: float) -> records.SuspensionRecord:
        ctx = self.ctx
        return records.SuspensionRecord(
            run_id=ctx.run_id,
            policy=unit.name,
            kind=unit.kind,
            target_key=ctx.target.key,
            prior={},
            prior_known=False,
            deadline_at=ctx.deadline_at,
            state=SS.INTENDED,
            updated_at=at,
            detail="suspend intended",
        )

    def _suspend_and_verify(
        self, claimed: tuple[policy_base.Suspender, dict[str, Any] | None]
    ) -> tuple[records.Event | None, BaseException | None]:
        ctx = self.ctx
        unit, prior = claimed
        started = ctx.clock.now()
        try:
            unit.suspend(run_id=ctx.run_id)
            hooks.pause_point("suspending", run_id=ctx.run_id, hooks_dir=ctx.hooks_dir)
            verified = unit.verify_suspended(run_id=ctx.run_id)
            now = ctx.clock.now()
            return (
                records.action(
                    ctx.run_id,
                    now,
                    "suspend",
                    actor="drill",
                    trigger="suspending",
                    expected=unit.describe(unit.suspended_value()),
                    actual=("verified: " if verified else "NOT VERIFIED: ") + unit.describe(unit.snapshot()),
                    duration_s=now - started,
                    policy=unit.name,
                    prior=prior,
                    verified=verified,
                ),
                None,
            )
        except Exception as exc:
            return None, exc

    def release_unclaimed(self) -> None:
        """Close the intents of a run whose first claim was refused: never claimed, nothing to restore."""
        ctx = self.ctx
        for intent in self.claimed:
            at = ctx.clock.now()
            try:
                ctx.journal.update_suspension(
                    ctx.run_id,
                    intent.policy,
                    SS.NOT_CLAIMED,
                    at=at,
                    detail="claim refused: another run holds the object; nothing was changed",
                    event=records.action(
                        ctx.run_id,
                        at,
                        "claim",
                        actor="drill",
                        trigger="suspending",
                        expected="object claimed",
                        actual="refused: another run holds it; nothing was changed",
                        policy=intent.policy,
                    ),
                    token=ctx.token,
                )
            except errors.JournalError:
                continue  # the preflight failure that follows is what the user needs to see
        self.claimed.clear()


def _attempt(call: Callable[[], T]) -> tuple[T | None, BaseException | None]:
    try:
        return call(), None
    except Exception as exc:
        return None, exc
