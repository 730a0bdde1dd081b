"""The ``suspending`` phase: claim each policy atomically, record its prior, suspend it, read it back.

Write-ahead: the intent is durable before the object is touched. The prior value is read in the
same atomic step that claims the object (the marker), so it can never be another run's suspended
value; the marker carries it until the journal does (``record_prior``, written once).

``Suspensions`` keeps, in the run's own memory, everything the restore path needs: the restore
never depends on reading the journal back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from orchestrator import errors, hooks, records
from orchestrator.clock import Clock
from orchestrator.journal import base as journal_base
from orchestrator.policies import base as policy_base
from orchestrator.targets import base as target_base

SS = records.SuspensionState


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
        ctx = self.ctx
        name, kind = suspender.name, suspender.kind
        started = ctx.clock.now()
        intent = records.SuspensionRecord(
            run_id=ctx.run_id,
            policy=name,
            kind=kind,
            target_key=ctx.target.key,
            prior={},
            prior_known=False,
            deadline_at=ctx.deadline_at,
            state=SS.INTENDED,
            updated_at=started,
            detail="suspend intended",
        )
        ctx.journal.record_intent(
            intent,
            records.action(
                ctx.run_id,
                started,
                "suspend.intent",
                actor="drill",
                trigger="suspending",
                expected=suspender.describe(suspender.suspended_value()),
                actual="intent recorded",
                policy=name,
                deadline_at=ctx.deadline_at,
            ),
            token=ctx.token,
        )
        index = len(self.claimed)
        self.claimed.append(intent)
        marker = policy_base.Marker(ctx.run_id, name, kind, {}, ctx.deadline_at)
        try:
            prior = suspender.claim(marker)
        except errors.MarkerConflictError as exc:
            if not any(s.prior_known for s in self.claimed):
                raise ClaimRefusedError(str(exc)) from None  # nothing changed yet: a failed preflight
            ctx.request_abort(str(exc))
            return
        self.claimed[index] = dataclasses.replace(intent, prior=prior, prior_known=True)
        ctx.journal.record_prior(ctx.run_id, name, prior, token=ctx.token)
        suspender.suspend(run_id=ctx.run_id)
        hooks.pause_point("suspending", run_id=ctx.run_id, hooks_dir=ctx.hooks_dir)
        verified = suspender.verify_suspended(run_id=ctx.run_id)
        now = ctx.clock.now()
        event = records.action(
            ctx.run_id,
            now,
            "suspend",
            actor="drill",
            trigger="suspending",
            expected=suspender.describe(suspender.suspended_value()),
            actual=("verified: " if verified else "NOT VERIFIED: ") + suspender.describe(suspender.snapshot()),
            duration_s=now - started,
            policy=name,
            prior=prior,
            verified=verified,
        )
        ctx.journal.update_suspension(
            ctx.run_id,
            name,
            SS.SUSPENDED,
            at=now,
            detail="verified" if verified else "not verified",
            event=event,
            token=ctx.token,
        )
        ctx.show(event)
        if not verified:
            ctx.request_abort(f"policy {name} did not read back as suspended")

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
