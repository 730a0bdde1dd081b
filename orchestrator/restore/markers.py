"""Restore from the markers alone: what the objects say, when the journal is missing, unreadable or elsewhere.

Every suspended object carries its marker (run id, original value, deadline, the instance it was claimed on),
so this path needs nothing but the target. It is the fallback of ``drill restore RUN`` and
``drill restore --expired``; it writes no journal (the caller records the report where it can).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator import errors
from orchestrator.policies import base as policy_base
from orchestrator.targets import base as target_base


@dataclass
class MarkerRestoreReport:
    """One line per marker found: which policy, which run, and what was done."""

    restored: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


def restore_from_markers(
    target: target_base.Target, *, run_id: str | None, now: float, expired_only: bool, force: bool = False
) -> MarkerRestoreReport:
    """Restore each drill marker's ``original`` on ``target`` and read it back.

    ``run_id`` given: that run's markers, at once (the user named the run: no deadline wait); others skipped.
    ``run_id`` None: every marker past its deadline, or every marker when not ``expired_only``.
    """
    report = MarkerRestoreReport()
    try:
        markers = target.marked()
    except errors.DrillError as exc:
        report.failed.append(f"{target.key}: markers unreadable, nothing restored: {exc}")
        return report
    for marker in markers:
        label = f"{marker.policy} ({marker.kind}) of run {marker.run_id} on {target.key}"
        if run_id is not None and marker.run_id != run_id:
            report.skipped.append(f"{label}: not run {run_id}; left alone")
        elif run_id is None and expired_only and marker.deadline_at > now:
            report.skipped.append(f"{label}: deadline not reached ({marker.deadline_at - now:.0f}s left); left alone")
        else:
            ok, detail = _restore_one(target, marker, force=force)
            (report.restored if ok else report.failed).append(f"{label}: {detail}")
    return report


def _restore_one(target: target_base.Target, marker: policy_base.Marker, *, force: bool) -> tuple[bool, str]:
    try:
        suspender = target.suspender(marker.kind, marker.policy)
        expected = suspender.describe(marker.original)
        suspender.restore(marker.original, run_id=marker.run_id, force=force)
        if suspender.verify_restored(marker.original, run_id=marker.run_id):
            return True, f"restored {expected} from the marker, verified"
        now_text = suspender.describe(suspender.snapshot())
        return False, f"restore to {expected} from the marker NOT VERIFIED: reads back as {now_text}"
    except errors.DrillError as exc:
        return False, f"restore from the marker FAILED: {exc}"
