"""``drill plan``: each policy with its current value, the fault, the deadline, what will be restored.

Reads the target, never writes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orchestrator import errors
from orchestrator.definitions import loading
from orchestrator.targets import base as target_base


@dataclass(frozen=True)
class PolicyPlan:
    name: str
    kind: str
    current: str
    while_suspended: str
    restore_to: str
    marker: str | None


@dataclass(frozen=True)
class Plan:
    drill: str
    mode: str
    target: str
    target_problem: str | None
    policies: list[PolicyPlan]
    fault: list[str]
    rollbacks: list[str]
    max_duration_s: float
    deadline_after_s: float
    participants: list[str] = field(default_factory=list)


def _activity(activity: dict[str, Any]) -> str:
    provider = activity.get("provider") or {}
    kind = provider.get("type", "?")
    where = (
        f"{provider.get('module')}.{provider.get('func')}"
        if kind == "python"
        else provider.get("url") or provider.get("path") or ""
    )
    return f"{activity.get('type', 'activity')} {activity.get('name', '?')} ({kind}: {where})"


def _unknown(name: str, kind: str, why: str) -> PolicyPlan:
    return PolicyPlan(name=name, kind=kind, current=why, while_suspended="?", restore_to="?", marker=None)


def make_plan(loaded: loading.LoadedDrill, target: target_base.Target, *, restore_grace_s: float) -> Plan:
    spec = loaded.drill.spec
    problem = target.check_reachable()
    policies: list[PolicyPlan] = []
    for policy in spec.policies:
        if problem is not None:
            policies.append(_unknown(policy.name, policy.kind, "unknown (target unreachable)"))
            continue
        try:
            units = target.units(policy)
        except errors.DrillError as exc:
            policies.append(_unknown(policy.name, policy.kind, f"cannot select its objects: {exc}"))
            continue
        if not units:
            policies.append(_unknown(policy.name, policy.kind, "selects no object now: nothing to suspend"))
        for suspender in units:
            try:
                current = suspender.snapshot()
                marker = suspender.marker()
                current_text = suspender.describe(current)
                marker_text = f"run {marker.run_id}" if marker else None
                while_suspended = suspender.describe(suspender.suspended_value())
            except errors.DrillError as exc:
                current, current_text, marker_text, while_suspended = {}, f"unreadable: {exc}", None, "?"
            policies.append(
                PolicyPlan(
                    name=suspender.name,
                    kind=policy.kind,
                    current=current_text,
                    while_suspended=while_suspended,
                    restore_to=current_text if current else "its value when the run starts",
                    marker=marker_text,
                )
            )
    experiment = loaded.experiment
    return Plan(
        drill=loaded.drill.metadata.name,
        mode=spec.mode.value,
        target=target.key,
        target_problem=problem,
        policies=policies,
        fault=[_activity(a) for a in experiment.get("method") or []],
        rollbacks=[_activity(a) for a in experiment.get("rollbacks") or []],
        max_duration_s=spec.guardrails.max_duration,
        deadline_after_s=spec.guardrails.max_duration + restore_grace_s,
        participants=[f"{p.name} ({p.role.value})" for p in spec.participants],
    )
