"""Preflight: every check before anything is mutated. A failed preflight changes nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from orchestrator import errors, records, settings
from orchestrator.adapters import chaostoolkit
from orchestrator.definitions import loading, models
from orchestrator.journal import base as journal_base
from orchestrator.policies import base as policy_base
from orchestrator.restore import recovery
from orchestrator.targets import base as target_base


class SteadyState(Protocol):
    def steady_state(self) -> chaostoolkit.StepResult: ...


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class Outcome:
    """The checks, and the suspension units the policies selected (what the run will suspend, in order)."""

    checks: list[Check]
    units: list[policy_base.Suspender] = field(default_factory=list)
    target_locked: bool = False
    """The target's own lock is held by this run (to free when the run ends)."""


def run_checks(
    loaded: loading.LoadedDrill,
    target: target_base.Target,
    journal: journal_base.JournalStore,
    *,
    run_id: str,
    now: float,
    deadline_at: float,
    steady_state: SteadyState | None,
) -> Outcome:
    outcome = Outcome(checks=[])
    outcome.checks = _checks(loaded, target, journal, run_id=run_id, now=now, deadline_at=deadline_at, out=outcome)
    if steady_state is not None and all(c.ok for c in outcome.checks):
        result = steady_state.steady_state()
        outcome.checks.append(Check("steady state holds", result.ok, "hypothesis met" if result.ok else result.summary))
    return outcome


def _checks(
    loaded: loading.LoadedDrill,
    target: target_base.Target,
    journal: journal_base.JournalStore,
    *,
    run_id: str,
    now: float,
    deadline_at: float,
    out: Outcome,
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
    checks.append(_protected(spec))

    holder = journal.lock_target(target.key, run_id=run_id, at=now)
    if holder is not None:
        checks.append(Check("target not locked", False, _held_by(journal, holder, now=now)))
        return checks  # the markers and the steady state are the live run's business: say only who holds it
    holder = target.lock(run_id=run_id, deadline_at=deadline_at)
    if holder is not None:
        checks.append(Check("target not locked", False, holder))
        return checks
    out.target_locked = True
    units: list[policy_base.Suspender] = []
    for policy in spec.policies:
        try:
            selected = target.units(policy)
        except errors.DrillError as exc:
            text = str(exc)
            named = text if text.startswith(f"policy {policy.name}:") else f"policy {policy.name}: {text}"
            checks.append(Check("policies", False, named))
            return checks
        if not selected:
            checks.append(Check("policies", False, f"policy {policy.name} selects no object; nothing to suspend"))
            return checks
        units.extend(selected)
    names = [u.name for u in units]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        checks.append(Check("policies", False, f"selected by more than one policy: {', '.join(twice)}"))
        return checks
    if units:
        checks.append(Check("policies", True, f"{len(units)} object(s) selected"))
    locked, lock_detail = False, "no other run"
    for unit in units:
        marker = unit.marker()
        if marker is not None and marker.run_id != run_id:
            locked = True
            lock_detail = (
                f"{unit.name} carries a marker from run {marker.run_id} (started from another journal "
                f"or machine); if that run is over, `drill restore {marker.run_id}` restores it from the marker"
            )
            break
    checks.append(Check("target not locked", not locked, lock_detail))
    if locked:
        return checks
    problems = target.preflight(units)
    checks.append(
        Check(
            "suspensions accepted",
            not problems,
            "; ".join(problems) if problems else "every change is permitted and passes a server-side dry run",
        )
    )
    out.units = units
    return checks


def _protected(spec: models.Spec) -> Check:
    target = spec.target
    if not isinstance(target, models.KubernetesTarget):
        return Check("protected namespace", True, "the sandbox has no namespaces")
    touched = set(target.namespaces)
    refused = sorted(touched & target.protected())
    if refused:
        return Check("protected namespace", False, f"{', '.join(refused)} is protected; see target.allowProtected")
    return Check("protected namespace", True, f"none of {', '.join(sorted(touched))} is protected")


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
