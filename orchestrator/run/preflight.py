"""Preflight: every check before anything is mutated. A failed preflight changes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from orchestrator import errors, records, settings
from orchestrator.adapters import chaostoolkit
from orchestrator.definitions import loading
from orchestrator.journal import base as journal_base
from orchestrator.restore import recovery
from orchestrator.targets import base as target_base


class SteadyState(Protocol):
    def steady_state(self) -> chaostoolkit.StepResult: ...


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def run_checks(
    loaded: loading.LoadedDrill,
    target: target_base.Target,
    journal: journal_base.JournalStore,
    *,
    run_id: str,
    now: float,
    steady_state: SteadyState | None,
) -> list[Check]:
    spec = loaded.drill.spec
    checks = [Check("definition", True, f"{loaded.path} and {loaded.experiment_path.name} are valid")]

    problem = target.check_reachable()
    checks.append(Check("target reachable", problem is None, problem or target.key))
    if problem is not None:
        return checks  # the other checks need the target
    problem = target.check_permissions()
    checks.append(Check("permissions", problem is None, problem or "may suspend and restore"))

    moment = datetime.fromtimestamp(now, UTC)
    blackout = next((b for b in spec.blackouts if b.start <= moment < b.end), None)
    checks.append(
        Check(
            "blackout window",
            blackout is None,
            f"in blackout {blackout.start.isoformat()} - {blackout.end.isoformat()} {blackout.reason}".strip()
            if blackout
            else "none now",
        )
    )
    checks.append(Check("protected namespace", True, "the sandbox has no namespaces"))

    holder = journal.lock_target(target.key, run_id=run_id, at=now)
    if holder is not None:
        checks.append(Check("target not locked", False, _held_by(journal, holder, now=now)))
        return checks  # the markers and the steady state are the live run's business: say only who holds it
    locked, lock_detail = False, "no other run"
    for policy in spec.policies:
        marker = target.suspender(policy.kind, policy.name).marker()
        if marker is not None and marker.run_id != run_id:
            locked = True
            lock_detail = (
                f"policy {policy.name} carries a marker from run {marker.run_id} (started from another journal "
                f"or machine); if that run is over, `drill restore {marker.run_id}` restores it from the marker"
            )
    checks.append(Check("target not locked", not locked, lock_detail))
    if locked:
        return checks

    if steady_state is not None:
        result = steady_state.steady_state()
        checks.append(Check("steady state holds", result.ok, "hypothesis met" if result.ok else result.summary))
    return checks


def _held_by(journal: journal_base.JournalStore, holder: str, *, now: float) -> str:
    try:
        run = journal.get_run(holder)
    except errors.JournalError:
        return f"run {holder} holds this target"
    live = recovery.liveness(run, now=now, lease_s=settings.Timing().lease_s)
    if live.alive:
        return (
            f"run {holder} is {run.state.value} on this target ({live.detail}); wait for it or `drill abort {holder}`"
        )
    return f"run {holder} holds this target but {live.detail}; `drill restore {holder}` restores and frees it"


def failures(checks: list[Check]) -> list[str]:
    return [f"{c.name}: {c.detail}" for c in checks if not c.ok]


def as_events(checks: list[Check], *, run_id: str, at: float) -> list[records.Event]:
    return [
        records.Event(
            run_id=run_id,
            at=at,
            kind=records.EventKind.ACTION,
            name="preflight.check",
            actor="drill",
            trigger="preflight",
            expected=c.name,
            actual=("ok: " if c.ok else "FAILED: ") + c.detail,
        )
        for c in checks
    ]
