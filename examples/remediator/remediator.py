"""A small, real remediation operator: keeps Deployments at a minimum number of replicas.

For every ``Remediator`` (remediation.drill.dev/v1) of one namespace with ``spec.suspend: false``, whenever
its target Deployment's ``spec.replicas`` drops below ``spec.minReplicas`` it patches the Deployment back to
``minReplicas`` and records an Event (reason ``Remediated``) on it. With ``spec.suspend: true`` it does
nothing but log ``skip <ns>/<remediator>: suspended ...``.

It watches Deployments and Remediators (reacting within a second), re-lists when a watch expires
(410 Gone), re-checks everything every ``--resync`` seconds, logs one line per action to stderr and exits
cleanly on SIGTERM/SIGINT. Run it from a workstation or CI::

    python examples/remediator/remediator.py --kubeconfig ~/.kube/config --namespace shop

or in the cluster as a Deployment (see README.md): without ``--kubeconfig`` it uses the in-cluster config
when there is one, and ``--namespace`` defaults to ``$POD_NAMESPACE`` or its ServiceAccount's namespace.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import queue
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from kubernetes import client, config
from kubernetes.client.rest import ApiException
from kubernetes.watch.watch import iter_resp_lines

GROUP = "remediation.drill.dev"
VERSION = "v1"
PLURAL = "remediators"
CONTROLLER = f"{GROUP}/remediator"
WATCH_TIMEOUT_S = 50  # server-side end of each watch request; the loop then resumes from the last resourceVersion
SA_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")

log = logging.getLogger("remediator")

Obj = dict[str, Any]
ALL = "*"  # queue item: reconcile every Remediator
STOP = None  # queue item: leave the loop


class Cache:
    """Thread-safe name -> object map of one kind, fed by its watch."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, Obj] = {}

    def replace(self, items: list[Obj]) -> None:
        with self._lock:
            self._items = {o["metadata"]["name"]: o for o in items}

    def put(self, obj: Obj) -> None:
        with self._lock:
            self._items[obj["metadata"]["name"]] = obj

    def drop(self, name: str) -> None:
        with self._lock:
            self._items.pop(name, None)

    def get(self, name: str) -> Obj | None:
        with self._lock:
            return self._items.get(name)

    def values(self) -> list[Obj]:
        with self._lock:
            return list(self._items.values())


class Watcher(threading.Thread):
    """List, then watch one kind of the namespace into a Cache; every change is put on the work queue.

    A watch that expires (410 Gone) is followed by a fresh list; other errors by a list after a 1 s back-off.
    """

    def __init__(
        self,
        kind: str,
        *,
        lister: Callable[..., Any],
        args: tuple[Any, ...],
        cache: Cache,
        work: queue.Queue[str | None],
        keys: Callable[[Obj], list[str]],
        stopping: threading.Event,
        start_rv: str | None = None,
    ) -> None:
        super().__init__(name=f"watch-{kind}", daemon=True)
        self.kind = kind
        self.lister = lister
        self.args = args
        self.cache = cache
        self.work = work
        self.keys = keys
        self.stopping = stopping
        self.start_rv = start_rv

    def relist(self) -> str:
        resp = self.lister(*self.args, _preload_content=False, _request_timeout=30)
        body = json.loads(resp.data)
        items = body.get("items") or []
        self.cache.replace(items)
        self.work.put(ALL)
        rv = str(body["metadata"]["resourceVersion"])
        log.info("listed %d %s at resourceVersion %s", len(items), self.kind, rv)
        return rv

    def watch_once(self, rv: str) -> str:
        """One watch request from ``rv``, applied to the cache until the server ends it (after
        ``WATCH_TIMEOUT_S``); returns the last resourceVersion seen. An ERROR event raises ApiException."""
        resp = self.lister(
            *self.args,
            watch=True,
            resource_version=rv,
            allow_watch_bookmarks=True,
            timeout_seconds=WATCH_TIMEOUT_S,
            _preload_content=False,
            _request_timeout=(10, WATCH_TIMEOUT_S + 20),
        )
        try:
            for line in iter_resp_lines(resp):
                if not line.strip():
                    continue
                event = json.loads(line)
                obj: Obj = event["object"]
                if event["type"] == "ERROR":  # a Status, e.g. 410 Expired: "too old resource version"
                    raise ApiException(status=obj.get("code"), reason=f"{obj.get('reason')}: {obj.get('message')}")
                rv = obj["metadata"]["resourceVersion"]
                if event["type"] == "BOOKMARK":
                    continue
                if event["type"] == "DELETED":
                    self.cache.drop(obj["metadata"]["name"])
                else:
                    self.cache.put(obj)
                for key in self.keys(obj):
                    self.work.put(key)
        finally:
            resp.release_conn()
        return rv

    def run(self) -> None:
        rv = self.start_rv
        while not self.stopping.is_set():
            try:
                if rv is None:
                    rv = self.relist()
                rv = self.watch_once(rv)
            except ApiException as exc:
                if exc.status == 410:
                    log.info("watch %s expired (410 Gone): re-listing", self.kind)
                else:
                    log.warning("watch %s failed (%s): re-listing in 1 s", self.kind, _short(exc))
                    self.stopping.wait(1)
                rv = None
            except Exception as exc:  # connection reset, read timeout, API server restarting, ...
                log.warning("watch %s failed (%s): re-listing in 1 s", self.kind, _short(exc))
                self.stopping.wait(1)
                rv = None


class Remediator:
    """The reconcile loop of one namespace."""

    def __init__(self, api: client.ApiClient, namespace: str, resync_s: float, start_rv: str | None) -> None:
        self.ns = namespace
        self.resync_s = resync_s
        self.apps = client.AppsV1Api(api)
        self.events = client.EventsV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.deployments = Cache()
        self.remediators = Cache()
        self.work: queue.Queue[str | None] = queue.Queue()
        self.stopping = threading.Event()
        self.skipped: dict[str, tuple[Any, ...]] = {}  # remediator -> what it last skipped (one log line each)
        self.specs: dict[str, tuple[Any, ...]] = {}  # remediator -> the spec last logged
        self.instance = socket.gethostname()
        self.watchers = [
            Watcher(
                "deployments",
                lister=self.apps.list_namespaced_deployment,
                args=(namespace,),
                cache=self.deployments,
                work=self.work,
                keys=self._remediators_of,
                stopping=self.stopping,
                start_rv=start_rv,
            ),
            Watcher(
                "remediators",
                lister=self.custom.list_namespaced_custom_object,
                args=(GROUP, VERSION, namespace, PLURAL),
                cache=self.remediators,
                work=self.work,
                keys=lambda obj: [obj["metadata"]["name"]],
                stopping=self.stopping,
                start_rv=start_rv,
            ),
        ]

    def _remediators_of(self, deployment: Obj) -> list[str]:
        name = deployment["metadata"]["name"]
        return [r["metadata"]["name"] for r in self.remediators.values() if r.get("spec", {}).get("target") == name]

    def stop(self, signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: stopping", signal.Signals(signum).name)
        self.stopping.set()
        self.work.put(STOP)

    def run(self) -> None:
        log.info("watching Deployments and Remediators in namespace %s (resync every %g s)", self.ns, self.resync_s)
        for w in self.watchers:
            w.start()
        next_resync = _now() + self.resync_s
        while not self.stopping.is_set():
            try:
                key = self.work.get(timeout=max(0.0, next_resync - _now()))
            except queue.Empty:
                key = ALL
            if key is STOP:
                break
            if _now() >= next_resync:  # due even while changes keep coming: a full pass covers ``key`` too
                key = ALL
                next_resync = _now() + self.resync_s
                log.debug("resync %s: %d remediators", self.ns, len(self.remediators.values()))
            try:
                self.reconcile(key)
            except Exception as exc:  # an API error or a dropped connection: the next resync tries again
                log.warning("reconcile %s/%s failed (%s); retried at the next resync", self.ns, key, _short(exc))
        log.info("stopped")  # the watch threads are daemons: they end with the process

    def reconcile(self, key: str) -> None:
        if key == ALL:
            remediators = self.remediators.values()
            names = {r["metadata"]["name"] for r in remediators}
            for seen in (self.skipped, self.specs):
                for gone in set(seen) - names:
                    del seen[gone]
        else:
            remediators = [r for r in [self.remediators.get(key)] if r]
        for rem in remediators:
            self.reconcile_one(rem)

    def reconcile_one(self, rem: Obj) -> None:
        name = rem["metadata"]["name"]
        spec = rem.get("spec") or {}
        target, minimum, suspended = spec.get("target"), int(spec.get("minReplicas", 1)), bool(spec.get("suspend"))
        if self.specs.get(name) != (target, minimum, suspended):
            self.specs[name] = (target, minimum, suspended)
            log.info(
                "remediator %s/%s: target=%s minReplicas=%d suspend=%s",
                *(self.ns, name, target, minimum, str(suspended).lower()),
            )
        if not isinstance(target, str):
            return
        dep = self.deployments.get(target)
        if dep is None:
            return
        replicas = _replicas(dep)
        if replicas >= minimum:
            self.skipped.pop(name, None)
            return
        if suspended:
            seen = (dep["metadata"].get("uid"), dep["metadata"].get("generation"), replicas, minimum)
            if self.skipped.get(name) != seen:
                self.skipped[name] = seen
                log.info(
                    "skip %s/%s: suspended (deployment %s has %d replicas < minReplicas %d)",
                    *(self.ns, name, target, replicas, minimum),
                )
            return
        self.skipped.pop(name, None)
        self.remediate(rem, target, minimum)

    def remediate(self, rem: Obj, target: str, minimum: int) -> None:
        # The cache may lag behind our own last patch: decide on the live object, and write only if it is
        # still that object (resourceVersion precondition: a concurrent change gets 409 and a re-check).
        try:
            live = self.apps.read_namespaced_deployment(target, self.ns, _preload_content=False)
        except ApiException as exc:
            if exc.status == 404:
                return
            raise
        dep = json.loads(live.data)
        replicas = _replicas(dep)
        if replicas >= minimum:
            return
        patch = {"metadata": {"resourceVersion": dep["metadata"]["resourceVersion"]}, "spec": {"replicas": minimum}}
        try:
            resp = self.apps.patch_namespaced_deployment(
                target, self.ns, patch, _content_type="application/merge-patch+json", _preload_content=False
            )
        except ApiException as exc:
            if exc.status == 409:
                self.work.put(rem["metadata"]["name"])
                return
            raise
        self.deployments.put(json.loads(resp.data))
        name = rem["metadata"]["name"]
        log.info(
            "remediate %s/%s: deployment %s scaled from %d to minReplicas %d", self.ns, name, target, replicas, minimum
        )
        self.record_event(dep, rem, replicas, minimum)

    def record_event(self, dep: Obj, rem: Obj, replicas: int, minimum: int) -> None:
        meta, rmeta = dep["metadata"], rem["metadata"]
        body = {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            # named like client-go's recorder does: <object>.<unix nanoseconds in hex>
            "metadata": {"name": f"{meta['name']}.{time.time_ns():x}", "namespace": self.ns},
            "eventTime": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "reportingController": CONTROLLER,
            "reportingInstance": self.instance,
            "action": "Scale",
            "reason": "Remediated",
            "type": "Normal",
            "note": f"Scaled from {replicas} to {minimum} replicas (Remediator {rmeta['name']})",
            "regarding": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "namespace": self.ns,
                "name": meta["name"],
                "uid": meta.get("uid"),
            },
            "related": {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "Remediator",
                "namespace": self.ns,
                "name": rmeta["name"],
                "uid": rmeta.get("uid"),
            },
        }
        try:
            self.events.create_namespaced_event(self.ns, body, _preload_content=False)
        except ApiException as exc:  # the remediation is done; a missing Event must not undo or repeat it
            log.warning("event on deployment %s/%s not recorded: %s", self.ns, meta["name"], _short(exc))


def _short(exc: Exception) -> str:
    """The status and the server's message of an API error, else the exception's type and text."""
    if isinstance(exc, ApiException):
        try:
            message = json.loads(exc.body or "{}").get("message")
        except (ValueError, AttributeError):
            message = None
        return f"{exc.status} {message or exc.reason}"
    return f"{type(exc).__name__}: {exc}"


def _replicas(dep: Obj) -> int:
    value = (dep.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)  # the API server's default


def _now() -> float:
    return time.monotonic()


def _api_client(kubeconfig: str | None, context: str | None) -> client.ApiClient:
    if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config()
        return client.ApiClient()
    return config.new_client_from_config(config_file=kubeconfig, context=context)


def _default_namespace() -> str | None:
    if os.environ.get("POD_NAMESPACE"):
        return os.environ["POD_NAMESPACE"]
    if SA_NAMESPACE.exists():
        return SA_NAMESPACE.read_text(encoding="utf-8").strip()
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: in-cluster config, else ~/.kube/config)")
    parser.add_argument("--context", help="kubeconfig context (default: its current context)")
    parser.add_argument("--namespace", default=_default_namespace(), help="namespace to watch")
    parser.add_argument("--resync", type=float, default=10.0, help="seconds between full re-checks (default 10)")
    parser.add_argument("--verbose", action="store_true", help="also log each resync pass")
    parser.add_argument(
        "--watch-from",
        metavar="RV",
        help="(tests) start each watch at this resourceVersion without listing first; an expired one "
        "takes the 410 Gone -> re-list path",
    )
    args = parser.parse_args(argv)
    if not args.namespace:
        parser.error("--namespace is required outside a cluster (or set POD_NAMESPACE)")
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s remediator %(levelname)s %(message)s"
    )
    if args.verbose:
        log.setLevel(logging.DEBUG)  # ours only: not urllib3's connection chatter
    api = _api_client(args.kubeconfig, args.context)
    operator = Remediator(api, args.namespace, args.resync, args.watch_from)
    signal.signal(signal.SIGTERM, operator.stop)
    signal.signal(signal.SIGINT, operator.stop)
    operator.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
