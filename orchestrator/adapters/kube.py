"""The Kubernetes API as plain dicts: one client per kubeconfig context (or the in-cluster config).

``KubeConfigRef.load()`` builds a ``KubeApi`` on its own ``client.Configuration`` (the process-wide default
configuration is never touched). ``KubeApi`` talks to the REST API directly through the client's ``ApiClient``
(``param_serialize`` + ``call_api``, so bearer tokens, exec plugins and client certificates all work) and
returns objects as plain dicts: get, merge / JSON patch (optionally ``dryRun=All``), list by label selector
(paginated), discovery (cached), SelfSubjectAccessReview, and the Lease of a target lock.

Every request has a timeout (``REQUEST_TIMEOUT``): a dead API server never hangs a restore. Failures become
``KubeError`` subclasses (all ``errors.TargetError``) carrying the status, the server's reason and its short
message, redacted: never a token. Retrying is the caller's business.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import urllib3
from kubernetes import client
from kubernetes import config as _config
from kubernetes.client.exceptions import ApiException
from kubernetes.config import kube_config as _kube_config
from kubernetes.config.config_exception import ConfigException

from orchestrator import errors
from orchestrator.redaction import redact

REQUEST_TIMEOUT = (5.0, 30.0)
"""(connect, read) seconds of every request."""
_PAGE = 500
# How often a kubeconfig's credential refresh hook runs at most. The client library runs it before every request,
# and it re-applies the whole kubeconfig to the configuration (host, TLS files, proxy: the host setter re-reads
# every proxy variable of the environment), which was a tenth of a 2,000-object fan-out's CPU. Tokens that expire
# are renewed by the hook five minutes before their expiry, so running it once per 10 s loses nothing.
REFRESH_EVERY_S = 10.0
_LEASE_ATTEMPTS = 5
_MICROTIME = "%Y-%m-%dT%H:%M:%S.%fZ"
config: Any = _config  # the loaders are untyped


class KubeError(errors.TargetError):
    """A request to the API server failed: ``status`` (None when no answer) and the server's ``reason``."""

    def __init__(self, message: str, *, status: int | None = None, reason: str = "") -> None:
        self.status = status
        self.reason = reason
        super().__init__(redact(message))


class KubeNotFound(KubeError):  # noqa: N818 (named after the HTTP status, like its siblings)
    """404: no such object, or the API server does not serve that kind."""


class KubeConflict(KubeError):  # noqa: N818
    """409: a resourceVersion (or other) precondition failed, or the object already exists."""


class KubeInvalid(KubeError):  # noqa: N818
    """422: the request was invalid (schema validation, a failed JSON patch ``test``)."""


class KubeForbidden(KubeError):  # noqa: N818
    """403: RBAC refused it; the message names the verb, resource and namespace."""


class KubeUnavailable(KubeError):  # noqa: N818
    """No answer (refused, reset, timed out), 5xx or 429: worth retrying later."""


_BY_STATUS: dict[int, type[KubeError]] = {404: KubeNotFound, 409: KubeConflict, 422: KubeInvalid, 403: KubeForbidden}


def _error_class(status: int) -> type[KubeError]:
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status == 429 or status >= 500:
        return KubeUnavailable
    return KubeError


@dataclass(frozen=True)
class Resource:
    """What discovery says of one kind."""

    plural: str
    namespaced: bool
    verbs: frozenset[str]


@dataclass(frozen=True)
class KubeConfigRef:
    """Where the credentials come from: a kubeconfig file and context, or the pod's ServiceAccount."""

    kubeconfig: str | None
    context: str | None
    in_cluster: bool = False

    def path(self) -> str:
        """The kubeconfig file used: the one given, else ``$KUBECONFIG``'s first entry, else ``~/.kube/config``."""
        if self.kubeconfig:
            return str(Path(self.kubeconfig).expanduser())
        env = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
        return str(Path(env[0]).expanduser()) if env else str(Path("~/.kube/config").expanduser())

    def describe(self) -> str:
        if self.in_cluster:
            return "in-cluster"
        context = f"context {self.context}" if self.context else "the current context"
        return f"{context} of {self.path()}"

    def load(self) -> KubeApi:
        """A ``KubeApi`` on a fresh configuration. ``errors.TargetError`` says what is wrong and how to fix it."""
        cfg = client.Configuration()
        if self.in_cluster:
            try:
                config.load_incluster_config(client_configuration=cfg)
            except ConfigException as exc:
                raise errors.TargetError(
                    f"in-cluster Kubernetes config not available ({redact(str(exc))}): run drill in a pod with a "
                    "ServiceAccount, or give a kubeconfig and context instead of inCluster: true"
                ) from exc
        else:
            path = self.path()
            if not Path(path).is_file():
                raise errors.TargetError(
                    f"kubeconfig {path} not found: give the target's kubeconfig, set KUBECONFIG, "
                    "or use inCluster: true inside a pod"
                )
            try:
                contexts, current = config.list_kube_config_contexts(config_file=path)
            except (ConfigException, OSError, ValueError) as exc:
                raise errors.TargetError(f"kubeconfig {path} cannot be read: {redact(str(exc))}") from exc
            names = sorted(str(c.get("name")) for c in contexts or [] if isinstance(c, dict))
            if self.context is not None and self.context not in names:
                raise errors.TargetError(
                    f"kubeconfig {path} has no context {self.context!r}; its contexts: {', '.join(names) or 'none'}"
                )
            if self.context is None and not current:
                raise errors.TargetError(
                    f"kubeconfig {path} has no current context: name one ({', '.join(names) or 'none defined'})"
                )
            try:
                config.load_kube_config(
                    config_file=path, context=self.context, client_configuration=cfg, persist_config=False
                )
            except (ConfigException, OSError, ValueError) as exc:
                raise errors.TargetError(
                    f"kubeconfig {path}, {self.describe()}: cannot be loaded: {redact(str(exc))}"
                ) from exc
        # Connection errors are retried a little by urllib3 (nothing was sent); reads of non-idempotent
        # requests never are: a PATCH that may have landed is the caller's to re-read and decide.
        cfg.retries = urllib3.Retry(total=2, connect=2, read=1, status=0, redirect=0, backoff_factor=0.1)
        cfg.connection_pool_maxsize = 64  # suspensions and restores fan out (a target's concurrency, up to 256)
        if getattr(cfg, "refresh_api_key_hook", None) is not None:
            throttle_refresh(cfg, every_s=REFRESH_EVERY_S)
        return KubeApi(client.ApiClient(cfg), where=self.describe())


def throttle_refresh(cfg: Any, *, every_s: float, now: Callable[[], float] = time.monotonic) -> None:
    """Make ``cfg``'s credential refresh hook run at most once per ``every_s`` (the first call always runs it),
    one caller at a time. The kubeconfig loader's hook installs a new hook of its own each time it runs: that one
    becomes the hook to run next time, behind the same throttle."""
    inner: list[Callable[[Any], None]] = [cfg.refresh_api_key_hook]
    lock = threading.Lock()
    last: list[float] = []

    def run(c: Any) -> None:
        with lock:
            t = now()
            if last and t - last[0] < every_s:
                return
            try:
                inner[0](c)
            finally:
                replaced = getattr(c, "refresh_api_key_hook", None)
                if replaced is not None and replaced is not run:
                    inner[0] = replaced
                setattr(c, "refresh_api_key_hook", run)  # noqa: B010 (typed None upstream)
            last[:] = [t]

    setattr(cfg, "refresh_api_key_hook", run)  # noqa: B010


def point_default_config(kubeconfig: str) -> None:
    """Make clients built from the process-wide defaults (chaostoolkit-kubernetes' ``load_kube_config()``) read
    ``kubeconfig``: the client library reads ``$KUBECONFIG`` once, when it is imported."""
    os.environ["KUBECONFIG"] = kubeconfig
    kube_config_module: Any = _kube_config
    kube_config_module.KUBE_CONFIG_DEFAULT_LOCATION = kubeconfig


def _microtime(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime(_MICROTIME)


def _parse_time(value: object) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


class KubeApi:
    """One API client; objects are plain dicts. Discovery results are cached for the client's lifetime."""

    def __init__(
        self,
        api_client: Any,
        *,
        where: str = "",
        timeout: tuple[float, float] = REQUEST_TIMEOUT,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._client = api_client
        self.where = where
        self._timeout = timeout
        self._now = now
        self._discovered: dict[str, dict[str, Resource]] = {}
        # (namespace, name) -> the Lease as this client last wrote it: renewing and freeing a Lease start from
        # it (one request, not a GET and a write: 500 namespaces renew every 10 s); a stale one gets 409.
        self._written: dict[tuple[str, str], dict[str, Any]] = {}

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> KubeApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport -----------------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        what: str,
        query: list[tuple[str, str]] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> Any:
        """The decoded JSON answer of one request; a ``KubeError`` for anything but 2xx."""
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        host = str(getattr(self._client.configuration, "host", "") or "the API server")
        try:
            m, url, hdrs, data, _ = self._client.param_serialize(
                method=method,
                resource_path=path,
                query_params=query or None,
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
            )
            response = self._client.call_api(m, url, header_params=hdrs, body=data, _request_timeout=self._timeout)
            raw = response.read()
        except ApiException as exc:  # TLS failures come as status 0
            raise KubeUnavailable(
                f"{what}: {host} cannot be reached: {str(exc.reason).splitlines()[0] if exc.reason else 'TLS error'}",
                status=None,
                reason="Unreachable",
            ) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise KubeUnavailable(
                f"{what}: {host} did not answer ({type(exc).__name__}); is the API server up and reachable?",
                status=None,
                reason="Unreachable",
            ) from exc
        status = int(response.status)
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes | bytearray) else str(raw or "")
        if 200 <= status < 300:
            try:
                return json.loads(text) if text else {}
            except json.JSONDecodeError as exc:
                raise KubeError(
                    f"{what}: the API server answered with something that is not JSON", status=status
                ) from exc
        reason, message = str(response.reason or ""), ""
        try:
            status_obj = json.loads(text)
            if isinstance(status_obj, dict):
                reason = str(status_obj.get("reason") or reason)
                message = str(status_obj.get("message") or "")
        except json.JSONDecodeError:
            message = text[:300]
        detail = f"{what}: {status} {reason}" + (f": {message}" if message else "")
        raise _error_class(status)(detail, status=status, reason=reason)

    # -- discovery -----------------------------------------------------------------------------------

    @staticmethod
    def _group_path(api_version: str) -> str:
        return "/api/v1" if api_version == "v1" else f"/apis/{api_version}"

    def _discover(self, api_version: str) -> dict[str, Resource]:
        try:
            found = self._call("GET", self._group_path(api_version), what=f"discover {api_version}")
        except KubeNotFound:
            found = {}
        resources: dict[str, Resource] = {}
        for item in found.get("resources") or []:
            name = str(item.get("name", ""))
            if not name or "/" in name:  # subresources (status, scale) are not kinds
                continue
            resources[str(item.get("kind", ""))] = Resource(
                plural=name, namespaced=bool(item.get("namespaced")), verbs=frozenset(item.get("verbs") or [])
            )
        self._discovered[api_version] = resources
        return resources

    def resource(self, api_version: str, kind: str) -> Resource:
        """Plural, scope and verbs of ``kind``; ``KubeNotFound`` when the server does not serve it."""
        cached = self._discovered.get(api_version)
        if cached is not None and kind in cached:
            return cached[kind]
        found = self._discover(api_version)  # a miss is re-discovered: a CRD may have been installed since
        if kind not in found:
            raise KubeNotFound(f"the API server does not serve {kind} in {api_version}", status=404, reason="NotFound")
        return found[kind]

    def patchable_kinds(self) -> list[tuple[str, str]]:
        """Every served kind (preferred versions) that can be listed and patched, for finding marked objects."""
        versions: list[str] = list(self._call("GET", "/api", what="discover the core API").get("versions") or [])
        groups = self._call("GET", "/apis", what="discover API groups").get("groups") or []
        for group in groups:
            preferred = (group.get("preferredVersion") or {}).get("groupVersion")
            if preferred:
                versions.append(str(preferred))
        kinds: list[tuple[str, str]] = []
        for api_version in versions:
            resources = self._discovered.get(api_version) or self._discover(api_version)
            kinds.extend((api_version, kind) for kind, res in resources.items() if {"list", "patch"} <= res.verbs)
        return sorted(kinds)

    def _path(self, api_version: str, kind: str, namespace: str | None, name: str = "") -> str:
        res = self.resource(api_version, kind)
        path = self._group_path(api_version)
        if res.namespaced and namespace:
            path += f"/namespaces/{quote(namespace, safe='')}"
        path += f"/{res.plural}"
        if name:
            path += f"/{quote(name, safe='')}"
        return path

    @staticmethod
    def _what(verb: str, kind: str, namespace: str | None, name: str) -> str:
        return f"{verb} {kind} {namespace}/{name}" if namespace else f"{verb} {kind} {name}"

    # -- objects -------------------------------------------------------------------------------------

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The object, or None when there is none (404)."""
        path = self._path(api_version, kind, namespace, name)
        try:
            obj: dict[str, Any] = self._call("GET", path, what=self._what("get", kind, namespace, name))
        except KubeNotFound:
            return None
        return obj

    def patch(
        self,
        api_version: str,
        kind: str,
        namespace: str,
        name: str,
        body: dict[str, Any] | list[dict[str, Any]],
        *,
        patch_type: Literal["merge", "json"],
        dry_run: bool = False,
        field_manager: str = "drill",
    ) -> dict[str, Any]:
        """The object after a JSON merge patch (``merge``) or a JSON patch (``json``)."""
        content_type = "application/merge-patch+json" if patch_type == "merge" else "application/json-patch+json"
        # Strict: a field the schema does not know is an error, not silently dropped (a generic patch with a
        # typo would otherwise "suspend" nothing and leave a restore that can never verify).
        query = [("fieldManager", field_manager), ("fieldValidation", "Strict")]
        if dry_run:
            query.append(("dryRun", "All"))
        verb = "patch (dry run)" if dry_run else "patch"
        result: dict[str, Any] = self._call(
            "PATCH",
            self._path(api_version, kind, namespace, name),
            what=self._what(verb, kind, namespace, name),
            query=query,
            body=body,
            content_type=content_type,
        )
        return result

    def list(
        self, api_version: str, kind: str, *, namespace: str | None, label_selector: str = ""
    ) -> list[dict[str, Any]]:
        """Every object of ``kind`` in ``namespace`` (None: all namespaces) matching the selector, all pages."""
        path = self._path(api_version, kind, namespace)
        where = f"in {namespace}" if namespace else "in all namespaces"
        items: list[dict[str, Any]] = []
        cont = ""
        while True:
            query = [("limit", str(_PAGE))]
            if label_selector:
                query.append(("labelSelector", label_selector))
            if cont:
                query.append(("continue", cont))
            page = self._call("GET", path, what=f"list {kind} {where}", query=query)
            for item in page.get("items") or []:
                item.setdefault("apiVersion", api_version)
                item.setdefault("kind", kind)
                items.append(item)
            cont = str((page.get("metadata") or {}).get("continue") or "")
            if not cont:
                return items

    def can_i(self, verb: str, *, group: str, resource: str, namespace: str, subresource: str = "") -> tuple[bool, str]:
        """(allowed, the authorizer's reason) of a SelfSubjectAccessReview."""
        attributes = {"verb": verb, "group": group, "resource": resource, "namespace": namespace}
        if subresource:
            attributes["subresource"] = subresource
        review = self._call(
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            what=f"review access to {verb} {resource} in {namespace or 'the cluster'}",
            body={
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SelfSubjectAccessReview",
                "spec": {"resourceAttributes": attributes},
            },
        )
        status = review.get("status") or {}
        return bool(status.get("allowed")), str(status.get("reason") or status.get("evaluationError") or "")

    def server_version(self) -> str:
        """The API server's version (``v1.36.5``): a cheap reachability check."""
        return str(self._call("GET", "/version", what="read the server version").get("gitVersion") or "?")

    # -- leases --------------------------------------------------------------------------------------

    @staticmethod
    def _lease_path(namespace: str, name: str = "") -> str:
        path = f"/apis/coordination.k8s.io/v1/namespaces/{quote(namespace, safe='')}/leases"
        return f"{path}/{quote(name, safe='')}" if name else path

    def _get_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            lease: dict[str, Any] = self._call(
                "GET", self._lease_path(namespace, name), what=self._what("get", "Lease", namespace, name)
            )
        except KubeNotFound:
            return None
        return lease

    def _put_lease(self, lease: dict[str, Any]) -> None:
        meta = lease["metadata"]
        key = (str(meta["namespace"]), str(meta["name"]))
        self._written[key] = self._call(
            "PUT",
            self._lease_path(*key),
            what=self._what("update", "Lease", *key),
            body=lease,
        )

    def _lease_of(self, namespace: str, name: str, *, holder: str, first: bool) -> dict[str, Any] | None:
        """The Lease to start from: on a first attempt the one this client last wrote, when ``holder`` holds it;
        else (and after a 409) the server's."""
        written = self._written.pop((namespace, name), None)
        if first and written is not None and (written.get("spec") or {}).get("holderIdentity") == holder:
            return written
        return self._get_lease(namespace, name)

    def _expired(self, spec: dict[str, Any], now: float) -> bool:
        renewed = _parse_time(spec.get("renewTime")) or _parse_time(spec.get("acquireTime"))
        duration = spec.get("leaseDurationSeconds")
        if renewed is None or not isinstance(duration, int):
            return True
        return renewed + duration < now

    def acquire_lease(
        self, namespace: str, name: str, *, holder: str, duration_s: int, annotations: dict[str, str]
    ) -> dict[str, Any] | None:
        """None when ``holder`` now holds the Lease (created, renewed or taken over once expired); else the
        current Lease of the other holder."""
        for _ in range(_LEASE_ATTEMPTS):
            lease = self._get_lease(namespace, name)
            stamp = _microtime(self._now())
            if lease is None:
                body = {
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": {"name": name, "namespace": namespace, "annotations": dict(annotations)},
                    "spec": {
                        "holderIdentity": holder,
                        "leaseDurationSeconds": duration_s,
                        "acquireTime": stamp,
                        "renewTime": stamp,
                        "leaseTransitions": 0,
                    },
                }
                try:
                    self._written[(namespace, name)] = self._call(
                        "POST",
                        self._lease_path(namespace),
                        what=self._what("create", "Lease", namespace, name),
                        body=body,
                    )
                except KubeConflict:  # created by someone else meanwhile: look again
                    continue
                return None
            spec = lease.setdefault("spec", {})
            current = str(spec.get("holderIdentity") or "")
            if current and current != holder and not self._expired(spec, self._now()):
                return lease
            if current != holder:
                spec["acquireTime"] = stamp
                spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
            spec.update({"holderIdentity": holder, "leaseDurationSeconds": duration_s, "renewTime": stamp})
            meta = lease.setdefault("metadata", {})
            meta["annotations"] = {**(meta.get("annotations") or {}), **annotations}
            try:
                self._put_lease(lease)  # carries the resourceVersion read: a concurrent change gets 409
            except KubeConflict:
                continue
            return None
        raise KubeConflict(
            f"Lease {namespace}/{name} kept changing while being acquired; try again", status=409, reason="Conflict"
        )

    def renew_lease(self, namespace: str, name: str, *, holder: str) -> None:
        """Push the Lease's renewTime to now; ``KubeConflict`` when another holder has it, ``KubeNotFound`` if gone."""
        for attempt in range(_LEASE_ATTEMPTS):
            lease = self._lease_of(namespace, name, holder=holder, first=attempt == 0)
            if lease is None:
                raise KubeNotFound(f"Lease {namespace}/{name} is gone; it was not renewed", status=404)
            spec = lease.setdefault("spec", {})
            if spec.get("holderIdentity") != holder:
                raise KubeConflict(
                    f"Lease {namespace}/{name} is held by {spec.get('holderIdentity') or 'nobody'}, not {holder}",
                    status=409,
                    reason="Conflict",
                )
            spec["renewTime"] = _microtime(self._now())
            try:
                self._put_lease(lease)
            except KubeConflict:
                continue
            return
        raise KubeConflict(f"Lease {namespace}/{name} kept changing while being renewed", status=409)

    def release_lease(self, namespace: str, name: str, *, holder: str) -> None:
        """Delete the Lease if ``holder`` holds it (guarded by its uid and resourceVersion); else nothing."""
        for attempt in range(_LEASE_ATTEMPTS):
            lease = self._lease_of(namespace, name, holder=holder, first=attempt == 0)
            if lease is None or (lease.get("spec") or {}).get("holderIdentity") != holder:
                return
            meta = lease.get("metadata") or {}
            try:
                self._call(
                    "DELETE",
                    self._lease_path(namespace, name),
                    what=self._what("delete", "Lease", namespace, name),
                    body={
                        "apiVersion": "v1",
                        "kind": "DeleteOptions",
                        "preconditions": {"uid": meta.get("uid"), "resourceVersion": meta.get("resourceVersion")},
                    },
                )
            except KubeNotFound:
                return
            except KubeConflict:
                continue
            return
        raise KubeConflict(f"Lease {namespace}/{name} kept changing while being released", status=409)
