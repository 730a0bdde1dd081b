"""Hidden incidents: automated recoveries per service over a window, ranked, with a threshold flag.

Automation that keeps recovering the same thing (a ReplicaSet replacing pods, a kubelet restarting a
container, an autoscaler rescaling, an operator re-syncing) may be hiding an incident nobody sees.
This module turns plain observation records (``orchestrator.adapters.kubeevents.Observation``: what
the Kubernetes API shows, already attributed to a service) into a typed, versioned report: per
service the recoveries in the window, per period (an hour by default), ranked by frequency, and
flagged for human investigation when more than ``threshold`` fall within any one period.

Pure logic: no I/O and no Kubernetes client; every moment is seconds since the epoch.

Version history of ``HiddenIncidentsReport``: 1, the first.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator import clock, durations, errors
from orchestrator.adapters.kubeevents import Observation, ServiceRef

SCHEMA_VERSION = 1
DEFAULT_THRESHOLD = 3
DEFAULT_PERIOD_S = 3600.0
DEFAULT_TOP = 10
MERGE_TOLERANCE_S = 2.0  # an event's time and the pod's creationTimestamp for the same creation

RecoveryKind = Literal["pod_replaced", "container_restart", "autoscaler_rescale", "operator_reaction"]
RECOVERY_KINDS: tuple[RecoveryKind, ...] = (
    "pod_replaced",
    "container_restart",
    "autoscaler_rescale",
    "operator_reaction",
)

DEFINITIONS: dict[str, str] = {
    "recovery": (
        "one automated action that put a service back to its desired state: pod_replaced, container_restart, "
        "autoscaler_rescale or operator_reaction; each is counted once, at the moment it happened"
    ),
    "pod_replaced": (
        "a pod a ReplicaSet, StatefulSet or DaemonSet created to replace one that was lost. Per controller: "
        "creations = pods it created (SuccessfulCreate events and the creationTimestamp of live pods, the same "
        "pod merged); lost = creations - pods the controller deleted itself (SuccessfulDelete: scale-down, "
        "rollout) - pods alive now (not terminating); the latest `lost` creations are the replacements. "
        "A rollout, a scale-up or a scale-down is therefore never a replacement"
    ),
    "container_restart": (
        "a container restart from pod status: restartCount, the latest at lastState.terminated.finishedAt "
        "(or state.running.startedAt); earlier ones are spread evenly from the pod's start (estimated)"
    ),
    "autoscaler_rescale": "a HorizontalPodAutoscaler SuccessfulRescale event, attributed to its scaleTargetRef",
    "operator_reaction": (
        "an event with one of the configured operator reasons (default: Argo CD OperationStarted, KEDA "
        "KEDAScaleTargetActivated), attributed to the object the event is about"
    ),
    "evidence": (
        "BackOff and Killing events of a service's pods: shown next to the counts, never counted (the "
        "restarts and replacements they announce are counted from the objects)"
    ),
    "service": (
        "the Deployment owning a pod's ReplicaSet, else its StatefulSet or DaemonSet, else the "
        "app.kubernetes.io/name label (kind `app`), else the object itself; key namespace/kind/name"
    ),
    "aggregated events": (
        "an event seen N times (series.count or deprecatedCount) counts N times, spread evenly between its first "
        "and last time (the ones between are estimated)"
    ),
    "period": "buckets of `period_s` seconds from the window's start; the last one may be shorter",
    "peak": "the most recoveries within any `period_s` seconds of the window (a sliding period, not a bucket)",
    "flagged": (
        "peak > threshold: for human investigation, automation that keeps recovering the same thing may hide "
        "an incident"
    ),
    "rank": "by recoveries in the window, then peak, then service key",
    "estimated": "how many of the counted recoveries have an interpolated moment",
}

NOTES = (
    "Events live only as long as the API server keeps them (--event-ttl, 1 h by default): older replacements "
    "are seen only through pods still alive, older autoscaler and operator reactions not at all.",
    "Moments come from the API server's objects: creation and event times have one-second precision.",
)


class _Row(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Bucket(_Row):
    start: str
    count: int


class ServiceRow(_Row):
    rank: int
    service: str
    namespace: str
    kind: str
    name: str
    recoveries: int
    by_kind: dict[str, int]
    estimated: int
    evidence: dict[str, int]
    buckets: list[Bucket]
    peak: int
    peak_start: str | None
    last_seen: str | None
    flagged: bool
    why: str | None
    examples: list[str]


class Window(_Row):
    since: str
    until: str
    seconds: float
    period_s: float


class Threshold(_Row):
    max_per_period: int
    period_s: float
    rule: str


class Scope(_Row):
    context: str | None
    namespaces: list[str] | None  # None: the whole cluster


class HiddenIncidentsReport(_Row):
    schema_version: int = SCHEMA_VERSION
    report: Literal["hidden-incidents"] = "hidden-incidents"
    generated_at: str
    scope: Scope
    window: Window
    threshold: Threshold
    definitions: dict[str, str] = Field(default_factory=lambda: dict(DEFINITIONS))
    notes: list[str] = Field(default_factory=lambda: list(NOTES))
    total_recoveries: int
    services_with_recoveries: int
    flagged: list[str]
    services: list[ServiceRow]


@dataclass(frozen=True)
class Recovery:
    """One counted recovery."""

    kind: RecoveryKind
    service: ServiceRef
    at: float
    object: str
    estimated: bool = False


def _creations(obs: Sequence[Observation]) -> list[tuple[float, str, bool]]:
    """The distinct creations of one controller's pods: (moment, pod, estimated), merged by pod and time."""
    by_pod: dict[str, list[Observation]] = defaultdict(list)
    for ob in obs:
        by_pod[ob.object].append(ob)
    out: list[tuple[float, str, bool]] = []
    for pod, seen in by_pod.items():
        kept: list[Observation] = []
        # events first (they carry each occurrence), then a live pod's creationTimestamp when no event matches
        for ob in sorted(seen, key=lambda o: (o.source == "pod", o.at)):
            if ob.source == "pod" and any(abs(k.at - ob.at) <= MERGE_TOLERANCE_S for k in kept):
                continue
            kept.append(ob)
        out.extend((k.at, pod, k.estimated) for k in kept)
    return sorted(out)


def replacements(observations: Iterable[Observation]) -> list[Recovery]:
    """The pods controllers created to replace lost ones (definition ``pod_replaced``), at any time."""
    created: dict[tuple[str, str], list[Observation]] = defaultdict(list)
    deleted: dict[tuple[str, str], list[Observation]] = defaultdict(list)
    live: dict[tuple[str, str], set[str]] = defaultdict(set)
    for ob in observations:
        key = (ob.service.namespace, ob.owner)
        if ob.kind == "pod_created":
            created[key].append(ob)
        elif ob.kind == "pod_deleted_by_controller":
            deleted[key].append(ob)
        elif ob.kind == "pod_live":
            live[key].add(ob.object)
    out: list[Recovery] = []
    for key, obs in created.items():
        creations = _creations(obs)
        first_created: dict[str, list[float]] = defaultdict(list)
        for at, pod, _ in creations:
            first_created[pod].append(at)
        # a controller's own deletion counts only against a creation known to precede it
        own_deletions = 0
        for pod, dels in _group(deleted.get(key, [])).items():
            own_deletions += min(len(dels), sum(1 for t in first_created.get(pod, []) if t <= max(dels) + 1))
        lost = len(creations) - own_deletions - len(live.get(key, set()))
        if lost <= 0:
            continue
        service = obs[0].service
        out.extend(Recovery("pod_replaced", service, at, pod, est) for at, pod, est in creations[-lost:])
    return out


def _group(obs: Iterable[Observation]) -> dict[str, list[float]]:
    grouped: dict[str, list[float]] = defaultdict(list)
    for ob in obs:
        grouped[ob.object].append(ob.at)
    return grouped


def recoveries(observations: Iterable[Observation]) -> list[Recovery]:
    """Every recovery the observations show, at any time (the window is applied by ``build``)."""
    obs = list(observations)
    out = replacements(obs)
    for ob in obs:
        if ob.kind in ("container_restart", "autoscaler_rescale", "operator_reaction"):
            kind: RecoveryKind = ob.kind
            out.append(Recovery(kind, ob.service, ob.at, ob.object, ob.estimated))
    return sorted(out, key=lambda r: (r.at, r.service, r.kind, r.object))


def peak(moments: Sequence[float], period_s: float) -> tuple[int, float | None]:
    """The most moments within any half-open span of ``period_s`` seconds, and where that span starts."""
    times = sorted(moments)
    best, start = 0, None
    lo = 0
    for hi, t in enumerate(times):
        while t - times[lo] >= period_s:
            lo += 1
        if hi - lo + 1 > best:
            best, start = hi - lo + 1, times[lo]
    return best, start


def buckets(moments: Iterable[float], since: float, until: float, period_s: float) -> list[int]:
    """Counts per period from ``since`` (the last period may be shorter); moments outside are ignored."""
    n = max(1, math.ceil((until - since) / period_s))
    counts = [0] * n
    for t in moments:
        if since <= t <= until:
            counts[min(n - 1, int((t - since) // period_s))] += 1
    return counts


def build(
    observations: Iterable[Observation],
    *,
    since: float,
    until: float,
    threshold: int = DEFAULT_THRESHOLD,
    period_s: float = DEFAULT_PERIOD_S,
    top: int = DEFAULT_TOP,
    context: str | None = None,
    namespaces: Sequence[str] | None = None,
    generated_at: float | None = None,
) -> HiddenIncidentsReport:
    """The report over ``[since, until]``: the ``top`` services by recoveries, plus every flagged one."""
    if until < since:
        raise errors.ReportError(f"the window ends before it starts ({clock.iso(until)} < {clock.iso(since)})")
    if period_s <= 0:
        raise errors.ReportError("the period must be longer than 0 s")
    if threshold < 0:
        raise errors.ReportError("the threshold cannot be negative")
    obs = list(observations)
    per_service: dict[ServiceRef, list[Recovery]] = defaultdict(list)
    for rec in recoveries(obs):
        if since <= rec.at <= until:
            per_service[rec.service].append(rec)
    evidence: dict[ServiceRef, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for ob in obs:
        if ob.kind == "evidence" and since <= ob.at <= until:
            evidence[ob.service][ob.reason] += 1

    rows: list[dict[str, Any]] = []
    for service, recs in per_service.items():
        moments = [r.at for r in recs]
        top_count, top_start = peak(moments, period_s)
        by_kind = {k: sum(1 for r in recs if r.kind == k) for k in RECOVERY_KINDS}
        flagged = top_count > threshold
        rows.append(
            {
                "service": service.key,
                "namespace": service.namespace,
                "kind": service.kind,
                "name": service.name,
                "recoveries": len(recs),
                "by_kind": {k: v for k, v in by_kind.items() if v},
                "estimated": sum(1 for r in recs if r.estimated),
                "evidence": dict(sorted(evidence.get(service, {}).items())),
                "buckets": [
                    Bucket(start=clock.iso(since + i * period_s) or "", count=c)
                    for i, c in enumerate(buckets(moments, since, until, period_s))
                ],
                "peak": top_count,
                "peak_start": clock.iso(top_start),
                "last_seen": clock.iso(max(moments)),
                "flagged": flagged,
                "why": (
                    f"{top_count} automated recoveries within {durations.format_duration(period_s)} "
                    f"(threshold {threshold}): for human investigation, automation that keeps recovering the "
                    "same thing may hide an incident"
                    if flagged
                    else None
                ),
                "examples": sorted({r.object for r in recs})[:5],
            }
        )
    rows.sort(key=lambda r: (-r["recoveries"], -r["peak"], r["service"]))
    listed = [r for i, r in enumerate(rows) if i < top or r["flagged"]]
    return HiddenIncidentsReport(
        generated_at=clock.iso(generated_at if generated_at is not None else until) or "",
        scope=Scope(context=context, namespaces=list(namespaces) if namespaces else None),
        window=Window(
            since=clock.iso(since) or "", until=clock.iso(until) or "", seconds=until - since, period_s=period_s
        ),
        threshold=Threshold(
            max_per_period=threshold,
            period_s=period_s,
            rule=f"flagged when more than {threshold} recoveries fall within any {durations.format_duration(period_s)}",
        ),
        total_recoveries=sum(r["recoveries"] for r in rows),
        services_with_recoveries=len(rows),
        flagged=[r["service"] for r in rows if r["flagged"]],
        services=[ServiceRow(rank=i + 1, **r) for i, r in enumerate(listed)],
    )


def load(data: Mapping[str, Any]) -> HiddenIncidentsReport:
    """A report document read back; a newer schema_version is refused."""
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise errors.ReportError(
            f"hidden-incidents report schema_version {version!r}; this drill reads {SCHEMA_VERSION}"
        )
    try:
        return HiddenIncidentsReport.model_validate(dict(data))
    except ValidationError as exc:
        raise errors.ReportError(f"not a hidden-incidents report: {exc.errors()[0]['msg']}") from exc


def render_text(report: HiddenIncidentsReport) -> str:
    """The report for a terminal: one line per service, the flagged ones marked."""
    lines = [
        f"hidden incidents {report.window.since} .. {report.window.until}"
        f" ({', '.join(report.scope.namespaces) if report.scope.namespaces else 'all namespaces'});"
        f" {report.threshold.rule}",
    ]
    if not report.services:
        lines.append("no automated recoveries in the window")
    for row in report.services:
        kinds = ", ".join(f"{k} {v}" for k, v in row.by_kind.items())
        mark = "FLAG" if row.flagged else "    "
        lines.append(
            f"{row.rank:3}. {mark} {row.service:50} {row.recoveries:4} recoveries, peak {row.peak}/"
            f"{durations.format_duration(report.window.period_s)} ({kinds})"
        )
        if row.why:
            lines.append(f"          {row.why}")
    return "\n".join(lines)
