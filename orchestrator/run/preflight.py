"""Preflight: every check before anything is mutated. A failed preflight changes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from orchestrator import records
from orchestrator.adapters import chaostoolkit
from orchestrator.definitions import loading
from orchestrator.journal import base as journal_base
from orchestrator.restore import restoring
from orchestrator.targets import base as target_base


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
    steady_state: chaostoolkit.ExperimentSession | None,
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

    others = [
        r
        for r in journal.list_runs(limit=200)
        if r.run_id != run_id and r.target_key == target.key and r.state.active and restoring.process_alive(r)
    ]
    lock_detail = f"run {others[0].run_id} is in progress on this target" if others else "no other run"
    locked = bool(others)
    for policy in spec.policies:
        marker = target.suspender(policy.kind, policy.name).marker()
        if marker is not None and marker.run_id != run_id:
            locked = True
            lock_detail = (
                f"policy {policy.name} carries a marker from run {marker.run_id}; "
                f"if that run is over, `drill restore {marker.run_id}` restores it"
            )
    checks.append(Check("target not locked", not locked, lock_detail))

    if steady_state is not None:
        result = steady_state.steady_state()
        checks.append(Check("steady state holds", result.ok, "hypothesis met" if result.ok else result.summary))
    return checks


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
