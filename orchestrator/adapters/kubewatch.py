"""Conditions on Kubernetes objects, watched through the API instead of polled.

A ``Condition`` names the objects it reads (one object by name, or every object matching a label selector)
and what must hold of them: a Deployment's available replicas, pods Ready behind a selector, a status
condition of any object. ``ConditionWatch`` runs one thread per watched (apiVersion, kind, namespace,
selector): a list, then a watch from the list's ``resourceVersion`` with ``allowWatchBookmarks=true``,
renewed from the last version seen when the server ends it; ``410 Gone`` (the version was compacted away)
means a fresh list; any other failure is retried with backoff from where it stopped. Every event re-evaluates
the whole conjunction; ``state().since`` is the receipt time of the event that gave it its current value.

The evaluation is plain functions of plain dicts (``evaluate``), tested without a cluster.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

from orchestrator.adapters import kube
from orchestrator.redaction import redact

WATCH_TIMEOUT_S = 50
"""``timeoutSeconds`` of one watch request: the server ends it then, and it is renewed from the last version."""
_TIMEOUT = (5.0, WATCH_TIMEOUT_S + 20.0)
_BACKOFF_MIN_S = 0.2
_BACKOFF_MAX_S = 5.0
_PAGE = 500

Check = Literal["available", "ready", "condition"]


@dataclass(frozen=True)
class Condition:
    """What must hold of the objects one stream sees: ``check`` with its parameters."""

    api_version: str
    kind: str
    namespace: str
    check: Check
    name: str = ""  # one object by name (``fieldSelector=metadata.name=...``)
    selector: str = ""  # or every object matching this label selector
    minimum: int | None = None  # available / ready: at least this many (available, None: spec.replicas)
    condition_type: str = ""
    condition_status: str = "True"

    @classmethod
    def deployment(cls, namespace: str, name: str, *, available: int | None = None) -> Condition:
        return cls("apps/v1", "Deployment", namespace, "available", name=name, minimum=available)

    @classmethod
    def pods(cls, namespace: str, selector: str, *, ready: int = 1) -> Condition:
        return cls("v1", "Pod", namespace, "ready", selector=selector, minimum=ready)

    @classmethod
    def status(
        cls, api_version: str, kind: str, namespace: str, name: str, *, type_: str, status: str = "True"
    ) -> Condition:
        return cls(api_version, kind, namespace, "condition", name=name, condition_type=type_, condition_status=status)

    def stream_key(self) -> tuple[str, str, str, str, str]:
        return (self.api_version, self.kind, self.namespace, self.name, self.selector)

    def describe(self) -> str:
        scope = f"{self.namespace}/" if self.namespace else ""
        where = f"{scope}{self.name}" if self.name else f"{self.namespace} ({self.selector})"
        return f"{self.kind} {where}"


# -- evaluation: pure functions ----------------------------------------------------------------------


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def deployment_available(obj: dict[str, Any] | None, minimum: int | None) -> tuple[bool, str]:
    """At least ``minimum`` available replicas; None: every desired replica (at least one), on a status the
    controller has caught up with (``observedGeneration``)."""
    if obj is None:
        return False, "not found"
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    available = _int(status.get("availableReplicas"))
    if minimum is not None:
        return available >= minimum, f"{available} available, at least {minimum} wanted"
    desired = _int(spec.get("replicas")) if "replicas" in spec else 1
    current = _int(status.get("observedGeneration")) >= _int((obj.get("metadata") or {}).get("generation"))
    holds = current and desired >= 1 and available >= desired
    return holds, f"{available} of {desired} available" + ("" if current else " (status not yet observed)")


def _ready(pod: dict[str, Any]) -> bool:
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions if isinstance(c, dict))


def pods_ready(pods: Sequence[dict[str, Any]], minimum: int) -> tuple[bool, str]:
    """At least ``minimum`` pods Ready and not terminating."""
    ready = sum(1 for pod in pods if _ready(pod))
    return ready >= minimum, f"{ready} of {len(pods)} pods Ready, at least {minimum} wanted"


def status_condition(obj: dict[str, Any] | None, type_: str, status: str) -> tuple[bool, str]:
    """``status.conditions[type == type_].status == status``."""
    if obj is None:
        return False, "not found"
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == type_:
            now = str(cond.get("status"))
            reason = f" ({cond['reason']})" if cond.get("reason") else ""
            return now == status, f"{type_}={now}{reason}, {status} wanted"
    return False, f"no {type_} condition yet, {status} wanted"


def evaluate(condition: Condition, objects: Sequence[dict[str, Any]]) -> tuple[bool, str]:
    """Whether ``condition`` holds of the objects its stream sees now, and what they show."""
    first = objects[0] if objects else None
    if condition.check == "available":
        holds, detail = deployment_available(first, condition.minimum)
    elif condition.check == "ready":
        holds, detail = pods_ready(objects, condition.minimum or 1)
    else:
        holds, detail = status_condition(first, condition.condition_type, condition.condition_status)
    return holds, f"{condition.describe()}: {detail}"


def conjunction(results: Sequence[tuple[bool, str]]) -> tuple[bool, str]:
    """Every condition holds; the detail names the ones that do not (or all of them when all hold)."""
    failing = [detail for holds, detail in results if not holds]
    return not failing, "; ".join(failing or [detail for _, detail in results])


# -- the watch ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class State:
    """What the watch knows now. ``version`` changes whenever ``known`` or ``holds`` does."""

    version: int
    known: bool  # every stream has listed its objects at least once
    holds: bool
    since: float | None  # receipt time of the event that gave ``holds`` its current value
    detail: str
    breached_at: float | None  # the first time the conjunction was seen not to hold
    breach_detail: str


class _Gone(Exception):  # noqa: N818
    """410: the resourceVersion is too old; list again."""


class _Stream:
    """One list+watch of (apiVersion, kind, namespace, selector); keeps the objects it sees by name."""

    def __init__(self, owner: ConditionWatch, path: str, query: list[tuple[str, str]], what: str) -> None:
        self.owner = owner
        self.path = path
        self.query = query
        self.what = what
        self.objects: dict[str, dict[str, Any]] = {}
        self.synced = False
        self.response: Any = None
        self.thread = threading.Thread(target=self.run, name=f"drill-watch {what}", daemon=True)

    def run(self) -> None:
        owner = self.owner
        version = owner.start_from
        backoff = _BACKOFF_MIN_S
        while not owner.closed.is_set():
            try:
                if version is None:
                    version = self._list()
                version = self._watch(version)
                backoff = _BACKOFF_MIN_S
            except _Gone:
                version = None
                owner.note_relist()
            except Exception as exc:  # unreachable, 5xx, a reset stream: retried with backoff
                if owner.closed.is_set():
                    return
                owner.note_error(f"{self.what}: {redact(str(exc)) or type(exc).__name__}")
                owner.closed.wait(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX_S)

    def _request(self, query: list[tuple[str, str]], timeout: tuple[float, float]) -> Any:
        api_client = self.owner.api_client
        method, url, headers, body, _ = api_client.param_serialize(
            method="GET",
            resource_path=self.path,
            query_params=query,
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        return api_client.call_api(method, url, header_params=headers, body=body, _request_timeout=timeout)

    def _failed(self, status: int, text: str, verb: str) -> Exception:
        try:
            message = str(json.loads(text).get("message") or "")
        except (json.JSONDecodeError, AttributeError):
            message = text[:300]
        if status == 410:
            return _Gone(message)
        return kube.KubeError(f"{verb} {self.what}: {status}: {message}", status=status)

    def _list(self) -> str:
        items: dict[str, dict[str, Any]] = {}
        cont, version = "", ""
        while True:
            query = [*self.query, ("limit", str(_PAGE))] + ([("continue", cont)] if cont else [])
            response = self._request(query, kube.REQUEST_TIMEOUT)
            text = response.read().decode("utf-8", "replace")
            if int(response.status) != 200:
                raise self._failed(int(response.status), text, "list")
            page = json.loads(text)
            for item in page.get("items") or []:
                items[str(item["metadata"]["name"])] = item
            meta = page.get("metadata") or {}
            version, cont = str(meta.get("resourceVersion") or ""), str(meta.get("continue") or "")
            if not cont:
                break
        at = self.owner.now()

        def replace() -> None:
            self.objects = items
            self.synced = True

        self.owner.changed(at, replace)
        return version

    def _watch(self, version: str) -> str:
        query = [
            *self.query,
            ("watch", "true"),
            ("resourceVersion", version),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", str(WATCH_TIMEOUT_S)),
        ]
        response = self._request(query, _TIMEOUT)
        raw = response.response  # the urllib3 response, not read yet: the events stream in
        self.response = raw
        try:
            if self.owner.closed.is_set():  # closed while this request was being sent
                return version
            if int(response.status) != 200:
                raise self._failed(int(response.status), raw.read().decode("utf-8", "replace"), "watch")
            for line in _lines(raw):
                at = self.owner.now()
                event = json.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    raise self._failed(_int(obj.get("code")), json.dumps(obj), "watch")
                meta = obj.get("metadata") or {}
                version = str(meta.get("resourceVersion") or version)
                if kind == "BOOKMARK":
                    continue
                name = str(meta.get("name"))
                if kind == "DELETED":
                    self.owner.changed(at, lambda: self.objects.pop(name, None))  # noqa: B023 (called at once)
                else:
                    self.owner.changed(at, lambda: self.objects.__setitem__(name, obj))  # noqa: B023
        finally:
            self.response = None
            raw.release_conn()
        return version


def _lines(raw: Any) -> Iterator[bytes]:
    """The newline-delimited JSON events of a watch response, each as soon as its chunk arrives."""
    pending = b""
    for chunk in raw.stream(amt=None, decode_content=False):
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            if line.strip():
                yield line
    if pending.strip():
        yield pending


class ConditionWatch:
    """Watches every condition; ``state()`` says whether all hold and since when (the event's receipt time)."""

    def __init__(
        self,
        api: kube.KubeApi,
        conditions: Sequence[Condition],
        *,
        now: Callable[[], float] = time.time,
        start_from: str | None = None,
    ) -> None:
        """``start_from``: watch from this resourceVersion instead of listing first (a test of ``410 Gone``)."""
        if not conditions:
            raise ValueError("a ConditionWatch needs at least one condition")
        self.api = api
        self.api_client: Any = api._client  # the same adapter family: stream on the KubeApi's own client
        self.conditions = list(conditions)
        self.now = now
        self.start_from = start_from
        self.closed = threading.Event()
        self.relists = 0
        self.errors = 0
        self._cond = threading.Condition()
        self._streams: dict[tuple[str, str, str, str, str], _Stream] = {}
        self._state = State(0, False, False, None, "not listed yet", None, "")
        self.last_error = ""

    def _path(self, condition: Condition) -> str:
        resource = self.api.resource(condition.api_version, condition.kind)
        group = "/api/v1" if condition.api_version == "v1" else f"/apis/{condition.api_version}"
        scope = f"/namespaces/{quote(condition.namespace, safe='')}" if resource.namespaced else ""
        return f"{group}{scope}/{resource.plural}"

    def start(self) -> None:
        """Resolve every kind (``kube.KubeNotFound`` if one is not served), then start one thread per stream."""
        for condition in self.conditions:
            key = condition.stream_key()
            if key in self._streams:
                continue
            query = [("fieldSelector", f"metadata.name={condition.name}")] if condition.name else []
            if condition.selector:
                query.append(("labelSelector", condition.selector))
            self._streams[key] = _Stream(self, self._path(condition), query, condition.describe())
        for stream in self._streams.values():
            stream.thread.start()

    def state(self) -> State:
        with self._cond:
            return self._state

    def wait_change(self, version: int, timeout: float) -> State:
        """The state once its version differs from ``version``, or after ``timeout`` seconds."""
        with self._cond:
            self._cond.wait_for(lambda: self._state.version != version, timeout=max(0.0, timeout))
            return self._state

    def close(self) -> None:
        """Stop every stream (an open watch is shut down at once) and wait for the threads, briefly."""
        self.closed.set()
        for stream in self._streams.values():
            raw = stream.response
            if raw is not None:
                with contextlib.suppress(Exception):  # already finished: nothing to interrupt
                    raw.shutdown()
        for stream in self._streams.values():
            if stream.thread.is_alive():
                stream.thread.join(timeout=2.0)

    # -- called by the streams -----------------------------------------------------------------------

    def note_relist(self) -> None:
        with self._cond:
            self.relists += 1

    def note_error(self, message: str) -> None:
        with self._cond:
            self.errors += 1
            self.last_error = message

    def changed(self, at: float, update: Callable[[], object]) -> None:
        """Apply a stream's ``update`` to its objects, then re-evaluate the conjunction (event received at ``at``)."""
        with self._cond:
            update()
            streams = [self._streams[c.stream_key()] for c in self.conditions]
            if not all(s.synced for s in streams):
                return
            results = [
                evaluate(c, [s.objects[n] for n in sorted(s.objects)])
                for c, s in zip(self.conditions, streams, strict=True)
            ]
            holds, detail = conjunction(results)
            old = self._state
            if old.known and old.holds == holds:
                self._state = dataclasses.replace(old, detail=detail)
                return
            first_breach = old.breached_at is None and not holds
            self._state = State(
                version=old.version + 1,
                known=True,
                holds=holds,
                since=at,
                detail=detail,
                breached_at=at if first_breach else old.breached_at,
                breach_detail=detail if first_breach else old.breach_detail,
            )
            self._cond.notify_all()
