"""The one restore path. The engine (after resolve, abort, signal, guardrail, timeout or exception),
``drill restore RUN`` and ``drill restore --expired`` all end here.

Each restore is journaled as intent (``restoring``) before the mutation and as ``restored`` only
after reading the value back; a restore that does not read back is ``failed`` and said loudly.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator import errors, hooks, processes, records
from orchestrator.clock import Clock
from orchestrator.journal import base as journal_base
from orchestrator.targets import base as target_base
from orchestrator.targets import registry

SS = records.SuspensionState


@dataclass
class RestoreReport:
    restored: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


def restore_suspension(
    journal: journal_base.JournalStore,
    suspension: records.SuspensionRecord,
    target: target_base.Target,
    *,
    clock: Clock,
    actor: str,
    trigger: str,
    hooks_dir: Path | None = None,
) -> bool:
    """Restore one policy to its prior value and verify it; True when verified."""
    suspender = target.suspender(suspension.kind, suspension.policy)
    started = clock.now()
    journal.update_suspension(
        suspension.run_id,
        suspension.policy,
        SS.RESTORING,
        at=started,
        detail="restore intended",
        event=records.action(
            suspension.run_id,
            started,
            "restore.intent",
            actor=actor,
            trigger=trigger,
            expected=suspender.describe(suspension.prior),
            policy=suspension.policy,
            prior=suspension.prior,
        ),
    )
    if hooks_dir is not None:
        hooks.pause_point("restoring", run_id=suspension.run_id, hooks_dir=hooks_dir)
    try:
        suspender.restore(suspension.prior, run_id=suspension.run_id)
        verified = suspender.verify_restored(suspension.prior, run_id=suspension.run_id)
        detail = "read back as " + suspender.describe(suspender.snapshot())
    except errors.DrillError as exc:
        verified, detail = False, str(exc)
    done = clock.now()
    journal.update_suspension(
        suspension.run_id,
        suspension.policy,
        SS.RESTORED if verified else SS.FAILED,
        at=done,
        detail=detail,
        event=records.action(
            suspension.run_id,
            done,
            "restore",
            actor=actor,
            trigger=trigger,
            expected=suspender.describe(suspension.prior),
            actual=("verified: " if verified else "NOT VERIFIED: ") + detail,
            duration_s=done - started,
            policy=suspension.policy,
            verified=verified,
        ),
    )
    return verified


def restore_run(
    journal: journal_base.JournalStore,
    run_id: str,
    *,
    clock: Clock,
    actor: str,
    trigger: str,
    hooks_dir: Path | None = None,
    target_for: Callable[[str], target_base.Target] = registry.from_key,
) -> RestoreReport:
    """Restore every policy of a run that is not yet restored; continues past failures."""
    report = RestoreReport()
    for suspension in journal.suspensions(run_id, unrestored=True):
        label = f"{suspension.policy} ({suspension.kind})"
        try:
            target = target_for(suspension.target_key)
            ok = restore_suspension(
                journal, suspension, target, clock=clock, actor=actor, trigger=trigger, hooks_dir=hooks_dir
            )
        except errors.DrillError as exc:
            ok = False
            journal.append(
                records.action(run_id, clock.now(), "restore", actor=actor, trigger=trigger, actual=f"FAILED: {exc}")
            )
        (report.restored if ok else report.failed).append(label)
    return report


def process_alive(run: records.RunRecord) -> bool:
    """Whether the run's own process still runs (only knowable on the machine that started it)."""
    return run.host == socket.gethostname() and processes.is_process_alive(run.pid)


def expired_suspensions(journal: journal_base.JournalStore, *, now: float) -> list[records.SuspensionRecord]:
    return [s for s in journal.suspensions(unrestored=True) if s.deadline_at <= now]


def restore_expired_markers(target: target_base.Target, *, now: float, known_runs: set[str]) -> list[str]:
    """Restore markers past their deadline straight from the marker (no journal entry needed).

    Used for markers whose run is not in this machine's journal (started elsewhere).
    """
    restored: list[str] = []
    for marker in target.marked():
        if marker.deadline_at > now or marker.run_id in known_runs:
            continue
        suspender = target.suspender(marker.kind, marker.policy)
        suspender.restore(marker.original, run_id=marker.run_id)
        if suspender.verify_restored(marker.original, run_id=marker.run_id):
            restored.append(f"{marker.policy} (run {marker.run_id}, from marker)")
    return restored
