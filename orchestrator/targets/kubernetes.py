"""A Kubernetes cluster as a drill target: one kubeconfig context (or the in-cluster config) and its namespaces.

Each policy of a drill file selects objects, by name or by label selector across the allowed namespaces; every
object is one suspension unit (``policies.kubernetes.unit_name``). The target's own lock is a
``coordination.k8s.io`` Lease per allowed namespace, held and renewed by the run, so two runs from two machines
with two journals still cannot drill the same namespaces at once. Preflight asks the API server, without
changing anything, whether each suspension is permitted (SelfSubjectAccessReview) and accepted (server-side
dry run: schema validation and admission webhooks speak before any write).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import yaml

from orchestrator import errors, redaction
from orchestrator.adapters import kube, kubewatch
from orchestrator.definitions import models
from orchestrator.policies import base
from orchestrator.policies import kubernetes as kpol

LEASE_NAME = "drill-lock"
LIST_OUTAGE_S = 20.0
"""How long finding the markers of one kind waits out an API server that does not answer."""
LEASE_S = 30
"""A dead holder's Lease is free this long after its last renewal (the run renews it every heartbeat)."""

T = TypeVar("T")
R = TypeVar("R")


def key_for(ref: kube.KubeConfigRef) -> str:
    if ref.in_cluster:
        return "kubernetes:in-cluster"
    return f"kubernetes:{ref.kubeconfig or ''}#{ref.context or ''}"


def ref_from_key(key: str) -> kube.KubeConfigRef:
    where = key.removeprefix("kubernetes:")
    if where == "in-cluster":
        return kube.KubeConfigRef(kubeconfig=None, context=None, in_cluster=True)
    path, _, context = where.rpartition("#")
    return kube.KubeConfigRef(kubeconfig=path or None, context=context or None)


def default_kubeconfig() -> str:
    first = (os.environ.get("KUBECONFIG") or "").split(os.pathsep)[0]
    return str(Path(first or "~/.kube/config").expanduser().resolve())


def current_context(kubeconfig: str) -> str | None:
    """The kubeconfig's current-context, or None when the file cannot say (loading it later says why)."""
    try:
        with open(kubeconfig, encoding="utf-8") as fh:
            data = yaml.safe_load(fh.read(1 << 20))
    except (OSError, yaml.YAMLError):
        return None
    context = data.get("current-context") if isinstance(data, dict) else None
    return str(context) if context else None


class KubernetesTarget:
    def __init__(
        self,
        ref: kube.KubeConfigRef,
        *,
        namespaces: Sequence[str] = (),
        mitigation: models.ScaleMitigation | None = None,
        concurrency: int = 16,
    ) -> None:
        if not ref.in_cluster:
            path = str(Path(ref.kubeconfig).expanduser().resolve()) if ref.kubeconfig else default_kubeconfig()
            # The journal's key names the context, never "whatever is current": a restore must reach this cluster.
            ref = kube.KubeConfigRef(kubeconfig=path, context=ref.context or current_context(path))
        self.ref = ref
        self.key = key_for(ref)
        self.namespaces = sorted(set(namespaces))
        self.mitigation = mitigation
        self.concurrency = concurrency
        self._api: kube.KubeApi | None = None
        self._leases: list[str] = []
        self._renewed_at = time.monotonic()
        # The units this target selected, by name: the engine's restore gets the very objects that suspended
        # (what they last read from the server is where the restore starts: see ``KubeSuspender._last``).
        self._units: dict[str, kpol.KubeSuspender] = {}

    @classmethod
    def from_spec(cls, spec: models.KubernetesTarget, *, context: str | None = None) -> KubernetesTarget:
        ref = kube.KubeConfigRef(
            kubeconfig=spec.kubeconfig, context=context or spec.context, in_cluster=spec.in_cluster
        )
        return cls(ref, namespaces=spec.namespaces, mitigation=spec.mitigation, concurrency=spec.concurrency)

    @classmethod
    def from_flags(cls, *, kubeconfig: str | None, context: str | None) -> KubernetesTarget:
        """The whole cluster of a kubeconfig context (``drill restore --expired --kubeconfig F --context C``)."""
        return cls(kube.KubeConfigRef(kubeconfig=kubeconfig, context=context))

    @property
    def api(self) -> kube.KubeApi:
        if self._api is None:
            self._api = self.ref.load()
        return self._api

    # -- the Target protocol ---------------------------------------------------------------------------

    def check_reachable(self) -> str | None:
        try:
            self.api.server_version()
        except errors.DrillError as exc:
            return f"Kubernetes API of {self.ref.describe()} unreachable: {exc}"
        return None

    def check_permissions(self) -> str | None:
        return None  # asked per object in preflight(), where the objects are known

    def experiment_vars(self) -> dict[str, Any]:
        vars_: dict[str, Any] = {"kube_namespaces": ",".join(self.namespaces)}
        if self.namespaces:
            vars_["kube_namespace"] = self.namespaces[0]
        if not self.ref.in_cluster:
            vars_["kubeconfig"] = self.ref.kubeconfig or ""
            vars_["kube_context"] = self.ref.context or ""
        return vars_

    def prepare_experiment(self) -> None:
        """Point chaostoolkit-kubernetes at this target's kubeconfig and context.

        chaosk8s builds its client from ``$KUBECONFIG`` (read once, when the kubernetes package is imported)
        and ``$KUBERNETES_CONTEXT``; the experiment runs in this process, so both are set here, explicitly.
        """
        if self.ref.in_cluster:
            os.environ["CHAOSTOOLKIT_IN_POD"] = "true"
            return
        kube.point_default_config(self.ref.kubeconfig or default_kubeconfig())
        if self.ref.context:
            os.environ["KUBERNETES_CONTEXT"] = self.ref.context
        else:
            os.environ.pop("KUBERNETES_CONTEXT", None)

    def suspender(self, kind: str, name: str) -> base.Suspender:
        made = self._units.get(name)
        if made is not None and made.kind == kind:
            return made
        try:
            _, ref = kpol.parse_unit(name)
        except ValueError as exc:
            raise errors.PolicyError(f"{name!r} is not a Kubernetes suspension unit: {exc}") from None
        return kpol.KubeSuspender(self.api, policy_kind=kind, unit=name, ref=ref)

    def units(self, policy: models.SandboxAutorestartPolicy | models.KubernetesPolicy) -> list[base.Suspender]:
        if not isinstance(policy, models.KubernetesPolicy):
            raise errors.PolicyError(f"policy {policy.name}: kind {policy.kind} does not apply to a Kubernetes target")
        api_version, kind = kpol.object_type(policy.kind, policy.api_version, policy.resource_kind)
        try:
            self.api.resource(api_version, kind)
        except kube.KubeNotFound as exc:
            raise errors.PolicyError(f"policy {policy.name}: {exc}; is its CRD installed?") from None
        found: list[tuple[kpol.ObjectRef, dict[str, Any]]] = []
        if policy.object is not None:
            ns, name = policy.object.namespace, policy.object.name
            obj = self.api.get(api_version, kind, ns, name)
            if obj is None:
                raise errors.PolicyError(f"policy {policy.name}: {kind} {ns}/{name} not found")
            found.append((kpol.ObjectRef(api_version, kind, ns, name), obj))
        else:
            selector = policy.selector
            assert selector is not None
            api = self.api

            def listed(ns: str) -> list[tuple[kpol.ObjectRef, dict[str, Any]]]:
                objs = api.list(api_version, kind, namespace=ns, label_selector=selector.labels)
                return [(kpol.ObjectRef(api_version, kind, ns, str(o["metadata"]["name"])), o) for o in objs]

            for in_ns in self._each(listed, sorted(selector.namespaces or self.namespaces)):
                found.extend(_value(in_ns))
        made = [
            kpol.KubeSuspender(
                self.api,
                policy_kind=policy.kind,
                unit=kpol.unit_name(policy.name, ref),
                ref=ref,
                patch=policy.patch,
                listed=obj,
            )
            for ref, obj in sorted(found, key=lambda f: (f[0].namespace, f[0].name))
        ]
        self._units.update((unit.name, unit) for unit in made)
        return list(made)

    def lock(self, *, run_id: str, deadline_at: float) -> str | None:
        annotations = {
            "drill.dev/run": run_id,
            "drill.dev/host": socket.gethostname(),
            "drill.dev/deadline": datetime.fromtimestamp(deadline_at, UTC).isoformat(timespec="seconds"),
        }

        api = self.api

        def take(ns: str) -> dict[str, Any] | None:
            return api.acquire_lease(ns, LEASE_NAME, holder=run_id, duration_s=LEASE_S, annotations=annotations)

        answers = self._each(take, self.namespaces)
        self._leases = [ns for ns, answer in zip(self.namespaces, answers, strict=True) if answer is None]
        for ns, answer in zip(self.namespaces, answers, strict=True):
            if isinstance(answer, Exception):
                self.unlock(run_id=run_id)
                return f"cannot take the Lease {ns}/{LEASE_NAME}: {answer}"
            if answer is not None:
                self.unlock(run_id=run_id)
                return _held(ns, answer)
        return None

    def renew_lock(self, *, run_id: str) -> str | None:
        now = time.monotonic()
        if now - self._renewed_at < LEASE_S / 3:  # three chances per Lease period; not a write per heartbeat
            return None
        self._renewed_at = now

        api = self.api

        def renew(ns: str) -> None:
            api.renew_lease(ns, LEASE_NAME, holder=run_id)

        for ns, answer in zip(self._leases, self._each(renew, self._leases), strict=True):
            if isinstance(answer, kube.KubeConflict | kube.KubeNotFound):  # expired and taken, or deleted: lost
                return f"the Lease {ns}/{LEASE_NAME} is no longer this run's: {answer}"
            # any other failure is an outage: the next heartbeat tries again, within the Lease's 30 s
        return None

    def unlock(self, *, run_id: str) -> None:
        # The Leases this process took, or (``drill restore`` of a run whose process died) every namespace's
        # Lease that ``run_id`` still holds: release_lease deletes only a Lease held by ``run_id``.
        # A failure leaves a Lease that expires LEASE_S after its last renewal.
        api = self.api
        self._each(lambda ns: api.release_lease(ns, LEASE_NAME, holder=run_id), self._leases or self.namespaces)
        self._leases = []

    def preflight(self, suspenders: Sequence[base.Suspender]) -> list[str]:
        problems: list[str] = []
        questions: dict[tuple[str, str, str, str], str] = {}  # (verb, group, plural, namespace) -> the advice
        units: list[kpol.KubeSuspender] = []
        for unit in suspenders:
            if not isinstance(unit, kpol.KubeSuspender):
                problems.append(f"{unit.name}: not a Kubernetes object")
                continue
            units.append(unit)
            ref = unit.ref
            plural = self.api.resource(ref.api_version, ref.kind).plural
            group = ref.api_version.rpartition("/")[0]
            for verb in ("get", "patch"):
                questions.setdefault((verb, group, plural, ref.namespace), "")
        for ns in self._leases:  # the lock was taken (get, create); renewing and freeing it need update, delete
            for verb in ("update", "delete"):
                questions.setdefault(
                    (verb, "coordination.k8s.io", "leases", ns), " (the run's lock could not be renewed or freed)"
                )

        api = self.api

        def ask(question: tuple[str, str, str, str]) -> tuple[bool, str]:
            verb, group, plural, ns = question
            return api.can_i(verb, group=group, resource=plural, namespace=ns)

        for (verb, group, plural, ns), answer in zip(questions, self._each(ask, questions), strict=True):
            allowed, reason = _value(answer)
            if not allowed:
                what = f"{plural}.{group}" if group else plural
                problems.append(
                    f"not permitted: {verb} {what} in namespace {ns}"
                    + (f" ({reason})" if reason else "")
                    + questions[(verb, group, plural, ns)]
                    + "; see drills/kubernetes/manifests/rbac.yaml"
                )
        if problems:
            return problems
        for unit, refused in zip(units, self._each(lambda u: u.dry_run(), units), strict=True):
            if isinstance(refused, errors.DrillError):
                problems.append(f"{unit.name}: the API server refuses the change (dry run): {refused}")
            else:
                _value(refused)
        return problems

    def marked(self) -> list[base.Marker]:
        """Every drill marker in the cluster (or the target's namespaces), found by label across all served kinds."""
        found: list[base.Marker] = []
        try:
            kinds = self.api.patchable_kinds()
        except errors.DrillError as exc:
            raise errors.TargetError(f"cannot list the kinds {self.key} serves: {exc}") from exc
        scopes: list[str | None] = list(self.namespaces) or [None]
        for api_version, kind in kinds:
            for ns in scopes:
                try:
                    objects = self._list_marked(api_version, kind, ns)
                except kube.KubeForbidden:
                    continue  # a kind this identity may not read is not one it may restore either
                except kube.KubeNotFound:
                    continue
                for obj in objects:
                    text = (obj.get("metadata", {}).get("annotations") or {}).get(base.MARKER_KEY)
                    marker = base.Marker.from_json(text) if text else None
                    if marker is not None:
                        found.append(marker)
        return found

    def _list_marked(self, api_version: str, kind: str, ns: str | None) -> list[dict[str, Any]]:
        """The marked objects of one kind, waiting out a moment of unavailability (a CRD just established, a
        restarting API server answer 503 or drop the connection for a second or two)."""
        deadline, delay = time.monotonic() + LIST_OUTAGE_S, 0.2
        while True:
            try:
                return self.api.list(api_version, kind, namespace=ns, label_selector=kpol.MARK_LABEL)
            except kube.KubeUnavailable:
                if time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def simulate_mitigation(self) -> str:
        m = self.mitigation
        if m is None:
            raise errors.TargetError(
                "this Kubernetes target has no mitigation for the simulated responder; "
                "add target.mitigation: {namespace, deployment, replicas}"
            )
        self.api.patch(
            "apps/v1", "Deployment", m.namespace, m.deployment, {"spec": {"replicas": m.replicas}}, patch_type="merge"
        )
        return f"scaled Deployment {m.namespace}/{m.deployment} to {m.replicas} replicas"

    def watch_conditions(
        self, conditions: Sequence[models.WatchCondition], *, now: Callable[[], float]
    ) -> kubewatch.ConditionWatch | None:
        if not conditions:
            return None
        return kubewatch.ConditionWatch(self.api, [watched(c) for c in conditions], now=now)

    def _each(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R | Exception]:
        """``fn`` of every item, ``self.concurrency`` requests in flight; each answer or the exception it raised,
        in the order of ``items`` (a namespace's Lease, an object's dry run: one slow answer does not wait for
        another; 500 namespaces one after another took a minute)."""
        todo = list(items)

        def one(item: T) -> R | Exception:
            try:
                return fn(item)
            except Exception as exc:
                return exc

        if len(todo) <= 1:
            return [one(item) for item in todo]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(todo)), thread_name_prefix="drill-kube") as pool:
            return list(pool.map(one, todo))


def _value(answer: R | Exception) -> R:
    """The answer of ``KubernetesTarget._each``, its exception raised again."""
    if isinstance(answer, Exception):
        raise answer
    return answer


def watched(condition: models.WatchCondition) -> kubewatch.Condition:
    """The adapter's form of one condition of a drill file's ``detection.conditions``."""
    if condition.deployment is not None:
        ref = condition.deployment
        return kubewatch.Condition.deployment(ref.namespace, ref.name, available=condition.available_replicas)
    if condition.pods is not None:
        return kubewatch.Condition.pods(condition.pods.namespace, condition.pods.selector, ready=condition.ready or 1)
    obj, status = condition.object, condition.condition
    assert obj is not None and status is not None  # the model allows nothing else
    return kubewatch.Condition.status(
        obj.api_version, obj.kind, obj.namespace or "", obj.name, type_=status.type, status=status.status
    )


def _held(ns: str, lease: dict[str, Any]) -> str:
    spec = lease.get("spec") or {}
    notes = (lease.get("metadata") or {}).get("annotations") or {}
    holder = str(spec.get("holderIdentity") or "?")
    return redaction.clean(
        f"run {holder} holds the Lease {ns}/{LEASE_NAME} (host {notes.get('drill.dev/host', '?')}, "
        f"deadline {notes.get('drill.dev/deadline', '?')}); wait for it, `drill abort {holder}` on its journal, "
        f"or let the Lease expire {LEASE_S}s after its holder stops renewing it"
    )
