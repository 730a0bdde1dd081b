"""What a Kubernetes cluster shows of its own automated recoveries, read from the API as plain records.

``observe`` reads (never writes) pods, ReplicaSets, StatefulSets, DaemonSets, HorizontalPodAutoscalers
and events (``events.k8s.io/v1``, or core v1 where that API is not served) in the given namespaces (or
the whole cluster) and turns them into ``Observation`` records, each already attributed to the service
it belongs to. Which observations count as recoveries, over which window, is decided by
``orchestrator.archive.incidents``; this module only reads and translates.

Service of an object: the Deployment owning its ReplicaSet, its StatefulSet or DaemonSet; else its
``app.kubernetes.io/name`` label (kind ``app``); else the object itself. An HPA's service is its
``scaleTargetRef``. An ``ApiException`` becomes ``errors.TargetError`` (status and reason, no body).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from orchestrator import errors

ObservationKind = Literal[
    "pod_created",  # a controller (ReplicaSet/StatefulSet/DaemonSet) created a pod (event or live pod)
    "pod_deleted_by_controller",  # the controller itself deleted a pod (scale-down, rollout): not a loss
    "pod_live",  # a pod of a controller that exists now and is not terminating
    "container_restart",  # a container restarted (pod status restartCount, lastState.terminated)
    "autoscaler_rescale",  # an HPA SuccessfulRescale event
    "operator_reaction",  # an operator's event with one of the configured reasons
    "evidence",  # BackOff / Killing events: shown, never counted (the restarts are counted from status)
]

NAME_LABEL = "app.kubernetes.io/name"
CONTROLLER_KINDS = frozenset({"ReplicaSet", "StatefulSet", "DaemonSet"})
EVIDENCE_REASONS = frozenset({"BackOff", "Killing"})
DEFAULT_OPERATOR_REASONS = frozenset(
    {
        "OperationStarted",  # Argo CD: an (auto-)sync or self-heal started
        "KEDAScaleTargetActivated",  # KEDA: scaled a target up from zero
    }
)
_CREATED = re.compile(r"^(?:Created pod: (?P<a>\S+)|create Pod (?P<b>\S+) in \S+ \S+ successful)")
_DELETED = re.compile(r"^(?:Deleted pod: (?P<a>\S+)|delete Pod (?P<b>\S+) in \S+ \S+ successful)")
_PAGE = 500


@dataclass(frozen=True, order=True)
class ServiceRef:
    """The service an observation is attributed to."""

    namespace: str
    kind: str  # Deployment, StatefulSet, DaemonSet, ReplicaSet, app (the label), Pod, or a custom kind
    name: str

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.kind}/{self.name}"


@dataclass(frozen=True)
class Observation:
    """One thing seen in the cluster, at one moment (seconds since the epoch)."""

    kind: ObservationKind
    service: ServiceRef
    at: float
    owner: str = ""  # the direct controller, "ReplicaSet/web-5d9c" (pod_* kinds)
    object: str = ""  # "Pod/web-5d9c-abcde", "HorizontalPodAutoscaler/web", ...
    reason: str = ""
    detail: str = ""
    estimated: bool = False  # the moment is interpolated (an aggregated event, earlier restarts)
    source: str = ""  # "events.k8s.io/v1", "v1 events", "pod", "pod status"


def _ts(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def _spread(first: float, last: float, count: int) -> list[tuple[float, bool]]:
    """``count`` moments from ``first`` to ``last``; the ends exact, the ones between interpolated."""
    if count <= 1:
        return [(last, False)]
    step = (last - first) / (count - 1)
    return [(first + i * step, 0 < i < count - 1) for i in range(count)]


def _api_error(what: str, exc: Any) -> errors.TargetError:
    return errors.TargetError(
        f"Kubernetes API refused {what}: {getattr(exc, 'status', '?')} {getattr(exc, 'reason', '')}"
    )


def _pages(call: Callable[..., Any], *args: Any) -> Iterator[Any]:
    cont: str | None = None
    while True:
        kwargs: dict[str, Any] = {"limit": _PAGE}
        if cont:
            kwargs["_continue"] = cont
        page = call(*args, **kwargs)
        yield from page.items or []
        cont = page.metadata._continue if page.metadata else None
        if not cont:
            return


class _Reader:
    def __init__(self, api: Any, namespaces: Sequence[str] | None) -> None:
        from kubernetes import client

        self.client = client
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)
        self.autoscaling = client.AutoscalingV1Api(api)
        self.events_api = client.EventsV1Api(api)
        self.namespaces = list(namespaces) if namespaces else None
        self.replicasets: dict[tuple[str, str], Any] = {}

    def list(self, api: Any, what: str, method: str) -> list[Any]:
        """Every object of one kind in the namespaces (or the cluster), all pages."""
        from kubernetes.client.exceptions import ApiException

        try:
            if self.namespaces is None:
                return list(_pages(getattr(api, f"list_{method}_for_all_namespaces")))
            items: list[Any] = []
            for ns in self.namespaces:
                items.extend(_pages(getattr(api, f"list_namespaced_{method}"), ns))
            return items
        except ApiException as exc:
            raise _api_error(f"listing {what}", exc) from exc

    def labelled(self, meta: Any, fallback: ServiceRef) -> ServiceRef:
        name = (meta.labels or {}).get(NAME_LABEL)
        return ServiceRef(meta.namespace, "app", name) if name else fallback

    def of_controller(self, namespace: str, kind: str, name: str) -> ServiceRef:
        """The service of a ReplicaSet/StatefulSet/DaemonSet (the Deployment owning a ReplicaSet)."""
        if kind == "ReplicaSet":
            rs = self.replicasets.get((namespace, name))
            if rs is None:
                return ServiceRef(namespace, kind, name)
            for ref in rs.metadata.owner_references or []:
                if ref.controller and ref.kind == "Deployment":
                    return ServiceRef(namespace, "Deployment", ref.name)
            return self.labelled(rs.metadata, ServiceRef(namespace, kind, name))
        return ServiceRef(namespace, kind, name)

    def of_pod(self, pod: Any) -> tuple[ServiceRef, str]:
        meta = pod.metadata
        for ref in meta.owner_references or []:
            if ref.controller and ref.kind in CONTROLLER_KINDS:
                return self.of_controller(meta.namespace, ref.kind, ref.name), f"{ref.kind}/{ref.name}"
        return self.labelled(meta, ServiceRef(meta.namespace, "Pod", meta.name)), ""


def _pod_observations(reader: _Reader, pods: Iterable[Any]) -> Iterator[Observation]:
    for pod in pods:
        service, owner = reader.of_pod(pod)
        meta = pod.metadata
        obj = f"Pod/{meta.name}"
        created = _ts(meta.creation_timestamp)
        if owner and created is not None:
            yield Observation("pod_created", service, created, owner, obj, "creationTimestamp", source="pod")
            if meta.deletion_timestamp is None:
                yield Observation("pod_live", service, created, owner, obj, source="pod")
        status = pod.status
        if status is None:
            continue
        started = _ts(status.start_time) or created
        for cs in [*(status.init_container_statuses or []), *(status.container_statuses or [])]:
            count = cs.restart_count or 0
            if count <= 0:
                continue
            last: float | None = None
            if cs.last_state is not None and cs.last_state.terminated is not None:
                last = _ts(cs.last_state.terminated.finished_at)
            if last is None and cs.state is not None and cs.state.running is not None:
                last = _ts(cs.state.running.started_at)
            if last is None:
                continue
            first = started if started is not None and started <= last else last
            moments = _spread(first, last, count + 1)[1:] if count > 1 else [(last, False)]
            for at, estimated in moments:
                yield Observation(
                    "container_restart",
                    service,
                    at,
                    owner,
                    obj,
                    "restartCount",
                    f"container {cs.name}: {count} restart(s)",
                    estimated,
                    "pod status",
                )


@dataclass(frozen=True)
class _Event:
    namespace: str
    kind: str
    name: str
    reason: str
    message: str
    first: float
    last: float
    count: int
    source: str


def _when(value: object) -> float | None:
    """Seconds since the epoch from an RFC 3339 time of the API (``2026-11-29T17:25:00Z``, micro or not)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def _precise(name: str, last: float, count: int) -> float:
    """The moment of a single event to the nanosecond when its name carries it.

    Events recorded by client-go's legacy recorder are named ``<object>.<UnixNano in hex>``; the
    timestamps themselves have one-second precision, too coarse to order a controller's creations
    within one second. Used only when the name's moment agrees with the event's time (within 2 s).
    """
    if count != 1:
        return last
    _, dot, suffix = name.rpartition(".")
    try:
        nanos = int(suffix, 16) if dot else None
    except ValueError:
        return last
    if nanos is None or abs(nanos / 1e9 - last) > 2.0:
        return last
    return nanos / 1e9


def _raw_events(reader: _Reader, api: Any, what: str) -> list[dict[str, Any]]:
    """Events as the API sent them (JSON): the typed client model refuses the legacy events whose
    ``eventTime`` is null, which is most of them."""
    from kubernetes.client.exceptions import ApiException

    def page(call: Callable[..., Any], *args: Any) -> Iterator[dict[str, Any]]:
        cont: str | None = None
        while True:
            kwargs: dict[str, Any] = {"limit": _PAGE, "_preload_content": False}
            if cont:
                kwargs["_continue"] = cont
            doc = json.loads(call(*args, **kwargs).data)
            yield from doc.get("items") or []
            cont = (doc.get("metadata") or {}).get("continue")
            if not cont:
                return

    try:
        if reader.namespaces is None:
            return list(page(api.list_event_for_all_namespaces))
        return [ev for ns in reader.namespaces for ev in page(api.list_namespaced_event, ns)]
    except ApiException as exc:
        raise _api_error(f"listing {what}", exc) from exc


def _events(reader: _Reader) -> list[_Event]:
    """The events, from events.k8s.io/v1, or from core v1 when that API is not served (404)."""
    from kubernetes.client.exceptions import ApiException

    try:
        raw = _raw_events(reader, reader.events_api, "events (events.k8s.io/v1)")
    except errors.TargetError as exc:
        cause = exc.__cause__
        if not isinstance(cause, ApiException) or cause.status != 404:
            raise
        return [_core_event(ev) for ev in _raw_events(reader, reader.core, "events (v1)")]
    out = []
    for ev in raw:
        meta, reg, series = ev.get("metadata") or {}, ev.get("regarding") or {}, ev.get("series") or {}
        last = (
            _when(series.get("lastObservedTime"))
            or _when(ev.get("deprecatedLastTimestamp"))
            or _when(ev.get("eventTime"))
            or _when(meta.get("creationTimestamp"))
            or 0.0
        )
        first = _when(ev.get("deprecatedFirstTimestamp")) or _when(ev.get("eventTime")) or last
        count = int(series.get("count") or ev.get("deprecatedCount") or 1)
        last = _precise(meta.get("name") or "", last, count)
        out.append(
            _Event(
                reg.get("namespace") or meta.get("namespace") or "",
                reg.get("kind") or "",
                reg.get("name") or "",
                ev.get("reason") or "",
                ev.get("note") or "",
                min(first, last),
                last,
                count,
                "events.k8s.io/v1",
            )
        )
    return out


def _core_event(ev: dict[str, Any]) -> _Event:
    meta, inv, series = ev.get("metadata") or {}, ev.get("involvedObject") or {}, ev.get("series") or {}
    last = (
        _when(series.get("lastObservedTime"))
        or _when(ev.get("lastTimestamp"))
        or _when(ev.get("eventTime"))
        or _when(meta.get("creationTimestamp"))
        or 0.0
    )
    first = _when(ev.get("firstTimestamp")) or _when(ev.get("eventTime")) or last
    count = int(series.get("count") or ev.get("count") or 1)
    last = _precise(meta.get("name") or "", last, count)
    return _Event(
        inv.get("namespace") or meta.get("namespace") or "",
        inv.get("kind") or "",
        inv.get("name") or "",
        ev.get("reason") or "",
        ev.get("message") or "",
        min(first, last),
        last,
        count,
        "v1 events",
    )


def _pod_name(pattern: re.Pattern[str], message: str) -> str | None:
    match = pattern.match(message)
    return (match.group("a") or match.group("b")) if match else None


def _event_observations(
    reader: _Reader, events: Iterable[_Event], hpas: dict[tuple[str, str], Any], operator_reasons: frozenset[str]
) -> Iterator[Observation]:
    for ev in events:
        obj = f"{ev.kind}/{ev.name}"
        kind: ObservationKind
        owner = ""
        if ev.kind in CONTROLLER_KINDS and ev.reason in ("SuccessfulCreate", "SuccessfulDelete"):
            pod = _pod_name(_CREATED if ev.reason == "SuccessfulCreate" else _DELETED, ev.message)
            if pod is None:
                continue
            kind = "pod_created" if ev.reason == "SuccessfulCreate" else "pod_deleted_by_controller"
            service = reader.of_controller(ev.namespace, ev.kind, ev.name)
            owner, obj = obj, f"Pod/{pod}"
        elif ev.kind == "HorizontalPodAutoscaler" and ev.reason == "SuccessfulRescale":
            kind = "autoscaler_rescale"
            hpa = hpas.get((ev.namespace, ev.name))
            target = hpa.spec.scale_target_ref if hpa is not None else None
            if target is not None and target.kind in ("Deployment", "StatefulSet"):
                service = ServiceRef(ev.namespace, target.kind, target.name)
            elif target is not None and target.kind == "ReplicaSet":
                service = reader.of_controller(ev.namespace, "ReplicaSet", target.name)
            else:
                service = ServiceRef(ev.namespace, "HorizontalPodAutoscaler", ev.name)
        elif ev.reason in operator_reasons:
            kind = "operator_reaction"
            service = ServiceRef(ev.namespace, ev.kind, ev.name)
        elif ev.kind == "Pod" and ev.reason in EVIDENCE_REASONS:
            kind = "evidence"
            service = ServiceRef(ev.namespace, "Pod", ev.name)  # re-attributed below when the pod is known
        else:
            continue
        for at, estimated in _spread(ev.first, ev.last, ev.count):
            yield Observation(kind, service, at, owner, obj, ev.reason, ev.message[:200], estimated, ev.source)


def observe(
    api: Any,
    namespaces: Sequence[str] | None = None,
    *,
    operator_reasons: Iterable[str] = DEFAULT_OPERATOR_REASONS,
) -> list[Observation]:
    """Everything ``orchestrator.archive.incidents`` needs, read from the cluster behind ``api`` (an ApiClient).

    ``namespaces`` None reads the whole cluster. Reads only; needs list on pods, replicasets,
    statefulsets, daemonsets, horizontalpodautoscalers and events.
    """
    reader = _Reader(api, namespaces)
    for rs in reader.list(reader.apps, "replicasets", "replica_set"):
        reader.replicasets[(rs.metadata.namespace, rs.metadata.name)] = rs
    hpas = {
        (h.metadata.namespace, h.metadata.name): h
        for h in reader.list(reader.autoscaling, "horizontalpodautoscalers", "horizontal_pod_autoscaler")
    }
    pods = reader.list(reader.core, "pods", "pod")
    pod_service = {(p.metadata.namespace, p.metadata.name): reader.of_pod(p)[0] for p in pods}
    found = list(_pod_observations(reader, pods))
    for ob in _event_observations(reader, _events(reader), hpas, frozenset(operator_reasons)):
        service = pod_service.get((ob.service.namespace, ob.service.name)) if ob.kind == "evidence" else None
        found.append(dataclasses.replace(ob, service=service) if service is not None else ob)
    return found


def api_client(kubeconfig: str | None = None, context: str | None = None) -> Any:
    """An ApiClient from a kubeconfig file (default: ``$KUBECONFIG`` or ~/.kube/config) and context."""
    from kubernetes import config
    from kubernetes.config.config_exception import ConfigException

    try:
        return config.new_client_from_config(config_file=kubeconfig, context=context)  # type: ignore[no-untyped-call]
    except (ConfigException, OSError) as exc:
        raise errors.TargetError(f"cannot load kubeconfig {kubeconfig or '(default)'}: {exc}") from exc
