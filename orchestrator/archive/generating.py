"""A synthetic archive, seeded and deterministic: a year of drills for tests, benchmarks and ``drill report demo``.

``generate(root, seed=..., runs=..., people=..., failure_modes=..., start=..., days=...)`` writes

    <root>/catalog/failure-modes.yaml    the failure-mode catalog (kind: FailureModeCatalog)
    <root>/catalog/roster.yaml           the roster (kind: Roster)
    <root>/archive/<run-id>/...          report.json, report.md, journal.jsonl, manifest.json per run

Same arguments, same bytes. The runs are planned the way a team drills: every critical failure mode
gets a no-automation drill each quarter, every automated one an auto-recovery run each month, and the
rest of the run budget goes to no-automation drills of any failure mode. Each run's timeline is made
as events, and its timings and outcome come from the real derivations (``timings.compute``,
``outcomes.derive``), so the reports hold what a real run of that timeline would hold. People have
a skill factor that improves or decays by quarter; some runs use hints, some time out, a few abort.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator import outcomes, records, redaction, timings
from orchestrator.archive import storing
from orchestrator.clock import iso
from orchestrator.reporting import model, reports

TL = records.TimelineKind
_DAY = 86_400.0
_QUARTER = 91 * _DAY
_MONTH = 30 * _DAY
_FIRST = ("ada", "ben", "chen", "dana", "eli", "fay", "gus", "hana", "ivo", "jo", "kai", "lea", "max", "nia", "omar")
_LAST = ("smith", "okafor", "li", "garcia", "novak", "sato", "berg", "khan", "silva", "moreau", "ivanova", "park")
_SERVICES = ("checkout", "payments", "search", "auth", "catalog", "orders", "ledger", "gateway", "billing", "mail")
_FAILURES = (
    "pod-crashloop",
    "db-primary-lost",
    "cache-evicted",
    "disk-full",
    "cert-expired",
    "dns-failure",
    "queue-backlog",
    "node-drained",
    "memory-leak",
    "config-rollout-bad",
)
_AUTOMATION = ("kubernetes-restart", "operator", "failover", "autoscaler", "supervisor", "script")
_SEVERITIES = ("critical", "high", "medium", "low")
_EXPECT = {"acknowledge": 120.0, "diagnose": 300.0, "mitigate": 600.0, "resolve": 900.0}
_MAX_DURATION_S = 1_800.0


@dataclass(frozen=True)
class Person:
    name: str
    team: str
    roles: tuple[str, ...]
    skill: float
    """Time multiplier in the first quarter (1.0 = the expectation), and how it changes each quarter."""
    trend: float


@dataclass(frozen=True)
class FailureMode:
    key: str
    service: str
    id: str
    severity: str
    automation: str
    automation_name: str | None
    recovery_target_s: float


@dataclass
class Generated:
    """Where the archive went and what it holds."""

    root: Path
    archive: Path
    catalog: Path
    runs: int = 0
    by_mode: dict[str, int] = field(default_factory=dict)
    by_outcome: dict[str, int] = field(default_factory=dict)


def _people(rng: random.Random, count: int) -> list[Person]:
    found = []
    teams = max(1, count // 8)
    for index in range(count):
        name = f"{_FIRST[index % len(_FIRST)]}.{_LAST[(index // len(_FIRST)) % len(_LAST)]}{index // 180 or ''}"
        roles = ("responder", "facilitator") if index % 7 == 0 else ("responder",)
        trend = rng.choice((0.85, 0.92, 1.0, 1.08, 1.15))  # improving ... decaying, per quarter
        found.append(Person(name, f"team-{index % teams:02d}", roles, round(rng.uniform(0.6, 1.6), 2), trend))
    return found


def _modes(rng: random.Random, count: int) -> list[FailureMode]:
    found = []
    for index in range(count):
        service = f"{_SERVICES[index % len(_SERVICES)]}{index // (len(_SERVICES) * len(_FAILURES)) or ''}"
        failure = _FAILURES[(index // len(_SERVICES)) % len(_FAILURES)]
        severity = _SEVERITIES[0] if index % 5 == 0 else rng.choice(_SEVERITIES[1:])
        automated = rng.random() < 0.7
        kind = rng.choice(_AUTOMATION) if automated else "none"
        name = f"{service}-{kind}" if automated else None
        target = float(rng.choice((60, 120, 300, 600)))
        found.append(FailureMode(f"{service}/{failure}", service, failure, severity, kind, name, target))
    return found


@dataclass(frozen=True)
class _Planned:
    at: float
    mode: FailureMode
    kind: str  # a records.RunMode value


def _plan(rng: random.Random, modes: list[FailureMode], runs: int, start: float, days: int) -> list[_Planned]:
    span = days * _DAY
    wanted: list[_Planned] = []
    quarters = max(1, math.ceil(span / _QUARTER))
    for mode in modes:
        if mode.severity == "critical":
            for q in range(quarters):
                at = start + q * _QUARTER + rng.uniform(0, min(_QUARTER, span - q * _QUARTER) * 0.9)
                wanted.append(_Planned(at, mode, "no-automation"))
        if mode.automation != "none":
            for m in range(max(1, int(span // _MONTH))):
                wanted.append(_Planned(start + m * _MONTH + rng.uniform(0, _MONTH * 0.9), mode, "auto-recovery"))
    rng.shuffle(wanted)
    chosen = wanted[:runs]
    while len(chosen) < runs:
        chosen.append(_Planned(start + rng.uniform(0, span * 0.98), rng.choice(modes), "no-automation"))
    return sorted(chosen, key=lambda p: (p.at, p.mode.key, p.kind))


def _event(run_id: str, at: float, kind: records.EventKind, name: str, actor: str, **data: Any) -> records.Event:
    return records.Event(run_id=run_id, at=at, kind=kind, name=name, actor=actor, data=data)


def _timeline(
    rng: random.Random, run_id: str, plan: _Planned, *, crew: list[tuple[Person, str]], t0: float, quarter: int
) -> tuple[list[records.Event], bool]:
    """The run's timeline events, and whether it needed hints; every time from t0, the fault going active."""
    tl = records.EventKind.TIMELINE
    events = [
        _event(run_id, t0, tl, TL.FAULT_ACTIVE.value, "drill"),
        _event(run_id, t0, tl, TL.NOTIFIED.value, "drill"),
    ]
    if plan.kind == "auto-recovery":
        detect = t0 + rng.uniform(5, 40)
        events.append(_event(run_id, detect, tl, TL.DETECTED.value, "drill"))
        if rng.random() < 0.9:
            recovered = t0 + plan.mode.recovery_target_s * rng.uniform(0.3, 1.4)
            events.append(_event(run_id, recovered, tl, TL.STEADY_STATE_RESTORED.value, "drill", hold_window_s=10.0))
        return events, False
    responders = [p for p, role in crew if role == "responder"]
    lead = responders[0]
    factor = lead.skill * lead.trend**quarter * rng.uniform(0.8, 1.25)
    roll = rng.random()
    hinted = roll < 0.25
    timed_out = 0.25 <= roll < 0.31 or factor > 2.2
    aborted = 0.31 <= roll < 0.34
    if hinted:
        factor *= 1.2
    ack = t0 + _EXPECT["acknowledge"] * factor * rng.uniform(0.5, 1.1)
    events.append(_event(run_id, ack, tl, TL.ACKNOWLEDGED.value, lead.name))
    events.append(_event(run_id, t0 + rng.uniform(5, 60), tl, TL.DETECTED.value, "drill"))
    if aborted:
        events.append(
            _event(run_id, ack + rng.uniform(30, 300), tl, TL.ABORTED.value, crew[-1][0].name, reason="real incident")
        )
        return events, False
    if hinted:
        for helper, _ in crew[: 1 + (len(crew) > 2)]:
            events.append(_event(run_id, ack + rng.uniform(10, 120), tl, TL.HINT.value, helper.name, text="hint"))
    if timed_out:
        events.append(_event(run_id, t0 + _MAX_DURATION_S, tl, TL.TIMED_OUT.value, "drill"))
        return events, hinted
    diagnosed = ack + _EXPECT["diagnose"] * factor * rng.uniform(0.4, 1.0)
    mitigated = diagnosed + _EXPECT["mitigate"] * factor * rng.uniform(0.2, 0.6)
    resolved = mitigated + rng.uniform(30, 240)
    for person in responders[1:]:
        events.append(_event(run_id, ack + rng.uniform(5, 90), tl, TL.ACKNOWLEDGED.value, person.name))
    events += [
        _event(run_id, diagnosed, tl, TL.DIAGNOSED.value, lead.name, text=f"{plan.mode.id} on {plan.mode.service}"),
        _event(run_id, mitigated, tl, TL.MITIGATED.value, lead.name),
        _event(run_id, mitigated + 2, tl, TL.STEADY_STATE_RESTORED.value, "drill", hold_window_s=10.0),
        _event(run_id, resolved, tl, TL.RESOLVED.value, lead.name),
        _event(run_id, resolved + 3, tl, TL.ROLLED_BACK.value, "drill"),
    ]
    return events, hinted


def _run(
    rng: random.Random, plan: _Planned, people: list[Person], start: float
) -> tuple[model.RunReport, list[records.Event]]:
    when = datetime.fromtimestamp(plan.at, UTC)
    drill = f"{plan.mode.service}-{plan.mode.id}-{'auto' if plan.kind == 'auto-recovery' else 'drill'}"
    run_id = f"{drill}-{when:%Y%m%d-%H%M%S}-{rng.getrandbits(16):04x}"
    quarter = int((plan.at - start) // _QUARTER)
    if plan.kind == "auto-recovery":
        crew = [(rng.choice(people), "observer")]
    else:
        chosen = rng.sample(people, k=min(len(people), rng.choice((1, 2, 2, 3))))
        facilitator = rng.choice([p for p in people if "facilitator" in p.roles] or people)
        crew = [(p, "responder") for p in chosen if p.name != facilitator.name] or [(facilitator, "responder")]
        if all(p.name != facilitator.name for p, _ in crew):
            crew.append((facilitator, "facilitator"))
    created = plan.at
    t0 = created + rng.uniform(20, 90)
    timeline, _ = _timeline(rng, run_id, plan, crew=crew, t0=t0, quarter=quarter)
    timeline.sort(key=lambda e: e.at)
    ending = max(e.at for e in timeline) + 5
    ended_by = "aborting" if any(e.name == TL.ABORTED.value for e in timeline) else "restoring"
    transitions = [
        _event(run_id, at, records.EventKind.TRANSITION, state, "drill")
        for at, state in (
            (created, "preflight"),
            (created + 2, "suspending"),
            (created + 4, "injecting"),
            (t0, "responding"),
            (ending, ended_by),
            (ending + 3, "reporting"),
            (ending + 4, "done"),
        )
    ]
    expectations: dict[str, float | None] = dict(_EXPECT)
    if plan.kind == "auto-recovery":
        expectations = {"recover": plan.mode.recovery_target_s}
    mode = records.RunMode(plan.kind)
    computed = timings.compute(timeline, mode=plan.kind, ended_at=ending, expectations=expectations)
    outcome = outcomes.derive(mode, [*transitions, *timeline])
    abort = next((e for e in timeline if e.name == TL.ABORTED.value), None)
    policies = []
    if plan.kind == "no-automation":
        name = plan.mode.automation_name or f"{plan.mode.service}-manual-restarts"
        policies.append(
            {
                "name": name,
                "kind": "sandbox-autorestart",
                "prior": {"autorestart": True},
                "suspended_at": iso(created + 3),
                "suspension_verified": True,
                "restored_at": iso(ending + 1),
                "restore_verified": True,
                "state": records.SuspensionState.RESTORED.value,
                "detail": "",
            }
        )
    responders = []
    for person, _role in crew:
        mine = [e for e in timeline if e.actor == person.name]
        row: dict[str, Any] = {"name": person.name}
        for event_name, label in (
            ("acknowledged", "acknowledge"),
            ("diagnosed", "diagnose"),
            ("mitigated", "mitigated"),
            ("resolved", "resolve"),
        ):
            event = next((e for e in mine if e.name == event_name), None)
            row[f"{label}_s"] = None if event is None else round(event.at - t0, 3)
        row["hints"] = sum(1 for e in mine if e.name == TL.HINT.value)
        if (
            any(row[f"{label}_s"] is not None for label in ("acknowledge", "diagnose", "mitigated", "resolve"))
            or row["hints"]
        ):
            responders.append(row)
    document: dict[str, Any] = {
        "schema_version": model.SCHEMA_VERSION,
        "run_id": run_id,
        "drill": drill,
        "drill_path": f"drills/{plan.mode.service}/{drill}.yaml",
        "description": f"{plan.mode.id} on {plan.mode.service} ({plan.mode.severity})",
        "mode": plan.kind,
        "failure_mode": plan.mode.key,
        "target": f"kubernetes:prod-eu/{plan.mode.service}",
        "state": records.RunState.DONE.value,
        "outcome": outcome.value,
        "abort_reason": abort.data.get("reason") if abort else None,
        "started_at": iso(created),
        "ended_at": iso(ending + 4),
        "generated_at": iso(ending + 4),
        "participants": [{"name": p.name, "role": role} for p, role in crew],
        "timings": [
            {
                "name": t.name,
                "seconds": None if t.seconds is None else round(t.seconds, 3),
                "censored": t.censored,
                "lower_bound_s": None if t.lower_bound_s is None else round(t.lower_bound_s, 3),
                "expected_s": t.expected_s,
                "met": t.met,
            }
            for t in computed
        ],
        "hints_used": sum(1 for e in timeline if e.name == TL.HINT.value),
        "responders": responders,
        "policies": policies,
        "timeline": [
            {"at": iso(e.at), "event": e.name, "actor": e.actor, "detail": reports.describe(e)} for e in timeline
        ],
        "notes": [],
    }
    report = model.RunReport.model_validate(redaction.clean_value(document))
    events = sorted([*transitions, *timeline], key=lambda e: e.at)
    return report, [records.Event(**{**e.__dict__, "seq": i + 1}) for i, e in enumerate(events)]


def _catalog_yaml(modes: list[FailureMode]) -> str:
    lines = [
        "# Generated by drill's synthetic archive (orchestrator/archive/generating.py).",
        "apiVersion: drill.dev/v1alpha1",
        "kind: FailureModeCatalog",
        "metadata:",
        "  name: synthetic",
        "spec:",
        "  failureModes:",
    ]
    for mode in modes:
        automation = (
            "{kind: none}"
            if mode.automation_name is None
            else f"{{kind: {mode.automation}, name: {mode.automation_name}}}"
        )
        lines += [
            f"    - service: {mode.service}",
            f"      id: {mode.id}",
            f"      severity: {mode.severity}",
            f"      detection: {json.dumps(f'alert {mode.service} {mode.id} pages the on-call')}",
            f"      automation: {automation}",
            f"      verifiedBy: {{drill: {mode.service}-{mode.id}-{'auto' if mode.automation_name else 'drill'}}}",
            f"      runbook: https://runbooks.example.com/{mode.service}/{mode.id}",
            f"      recoveryTarget: {int(mode.recovery_target_s)}s",
        ]
    return "\n".join(lines) + "\n"


def _roster_yaml(people: list[Person]) -> str:
    lines = [
        "# Generated by drill's synthetic archive (orchestrator/archive/generating.py).",
        "apiVersion: drill.dev/v1alpha1",
        "kind: Roster",
        "metadata:",
        "  name: synthetic",
        "spec:",
        "  people:",
    ]
    for person in people:
        lines += [
            f"    - name: {person.name}",
            f"      team: {person.team}",
            f"      roles: [{', '.join(person.roles)}]",
        ]
    return "\n".join(lines) + "\n"


def generate(
    root: Path,
    *,
    seed: int,
    runs: int,
    people: int,
    failure_modes: int,
    start: datetime | float,
    days: int = 365,
) -> Generated:
    """Write a synthetic catalog, roster and archive of ``runs`` runs into ``root``; same arguments, same bytes."""
    if runs < 0 or people < 2 or failure_modes < 1 or days < 1:
        raise ValueError("need runs >= 0, people >= 2, failure_modes >= 1 and days >= 1")
    begin = start.timestamp() if isinstance(start, datetime) else float(start)
    rng = random.Random(seed)
    crew = _people(rng, people)
    modes = _modes(rng, failure_modes)
    result = Generated(root=root, archive=root / "archive", catalog=root / "catalog")
    result.catalog.mkdir(parents=True, exist_ok=True)
    (result.catalog / "failure-modes.yaml").write_text(_catalog_yaml(modes), encoding="utf-8")
    (result.catalog / "roster.yaml").write_text(_roster_yaml(crew), encoding="utf-8")
    for plan in _plan(rng, modes, runs, begin, days):
        report, events = _run(rng, plan, crew, begin)
        final = result.archive / report.run_id
        if storing.is_archived(final):
            continue
        with storing.staging(result.archive, report.run_id) as staged:
            (staged / "report.json").write_text(report.to_json(), encoding="utf-8")
            (staged / "report.md").write_text(reports.render_markdown(report), encoding="utf-8")
            journal = "".join(json.dumps(e.to_json(), sort_keys=True) + "\n" for e in events)
            (staged / "journal.jsonl").write_text(journal, encoding="utf-8")
            generated_at = datetime.fromisoformat(report.generated_at or "1970-01-01T00:00:00Z").timestamp()
            storing.publish(staged, result.archive, report.run_id, archived_at=generated_at + 60, durable=False)
        result.runs += 1
        result.by_mode[report.mode] = result.by_mode.get(report.mode, 0) + 1
        outcome = report.outcome or "none"
        result.by_outcome[outcome] = result.by_outcome.get(outcome, 0) + 1
    return result
