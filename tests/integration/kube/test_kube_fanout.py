"""A cluster-wide drill over 200 objects of mixed kinds in 50 namespaces: drill's fan-out end to end.

The fleet (built once for the module, deleted at the end): 50 namespaces ``<prefix>-000`` .. ``<prefix>-049``, each
with a CronJob, an HPA (every other one without ``spec.behavior``), a Flux Kustomization (even namespaces) or an
Argo CD Application (odd ones) and a ConfigMap suspended by a ``generic`` policy, all labelled
``drill.dev/fanout=<prefix>``. The drill's target lists the 50 namespaces; its five policies select by that label;
the experiment is drillkit's: ``web`` (in the first namespace) scaled to zero. Objects are suspended in batches,
16 requests in flight (the target's default concurrency).

1. A clean run with ``--auto-respond``: exit 0, all 200 suspended and verified, restored and verified, each one
   written exactly once each way (the audit log), every object equal to its snapshot.
2. SIGKILL in the middle of suspending (between 30 % and 90 % of the objects carry the marker label), then
   ``drill restore RUN`` with the run's own drill home: exit 0, every object back exactly, no marker, no Lease.
3. SIGKILL in the middle of restoring (some objects restored, others still marked, some of them with their restore
   intent journaled and held at the test pause), then, with the markers' deadlines moved into the past as the
   admin, ``drill restore --expired --kubeconfig K`` from another directory with an empty drill home: exit 0,
   every object back exactly, no marker.

The fleet helpers (``Fleet``) are also used by ``scripts/bench_kube_fanout.py``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from orchestrator.policies import base as policy_base
from orchestrator.policies import kubernetes as kpol
from orchestrator.run import suspending
from tests.conftest import DrillEnv, journal_rows, wait_for
from tests.integration.kube import drillkit
from tests.integration.kube.conftest import KubeCluster, deployment

pytestmark = pytest.mark.kube

NAMESPACES = 50
PER_NAMESPACE = 4
CONCURRENCY = 16  # the target's default, said explicitly: the batches below depend on it
AUTO = "ack=0.1s,mitigate=0.2s,resolve=0.3s"
FANOUT_LABEL = "drill.dev/fanout"
MARKER_PTR = kpol.pointer("metadata", "annotations", policy_base.MARKER_KEY)
RESTORED_FROM_MARKER = "restored and verified from its marker: "


# -- the fleet ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    """One kind of object in the fleet and the drill policy that selects it."""

    policy: str
    policy_kind: str
    api_version: str
    kind: str
    plural: str
    short: str

    def path(self, ns: str | None = None, name: str | None = None) -> str:
        root = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        where = f"{root}/namespaces/{ns}/{self.plural}" if ns else f"{root}/{self.plural}"
        return f"{where}/{name}" if name else where


CRONJOB = Kind("cronjobs", "cronjob", "batch/v1", "CronJob", "cronjobs", "cron")
HPA = Kind("autoscalers", "hpa", "autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", "hpa")
FLUX = Kind("kustomizations", "flux", "kustomize.toolkit.fluxcd.io/v1", "Kustomization", "kustomizations", "ks")
ARGO = Kind("applications", "argocd-application", "argoproj.io/v1alpha1", "Application", "applications", "app")
SWITCH = Kind("switches", "generic", "v1", "ConfigMap", "configmaps", "cfg")
KINDS = (CRONJOB, HPA, FLUX, ARGO, SWITCH)
SWITCH_PATCH = {"data": {"mode": "manual"}}


def kind_of(ns_index: int, obj_index: int) -> Kind:
    """The mix: CronJob, HPA, Kustomization (even namespaces) or Application (odd ones), ConfigMap, repeated."""
    return (CRONJOB, HPA, FLUX if ns_index % 2 == 0 else ARGO, SWITCH)[obj_index % 4]


@dataclass(frozen=True)
class Obj:
    kind: Kind
    namespace: str
    name: str

    @property
    def key(self) -> str:
        return f"{self.kind.kind}/{self.namespace}/{self.name}"

    @property
    def unit(self) -> str:
        ref = kpol.ObjectRef(self.kind.api_version, self.kind.kind, self.namespace, self.name)
        return kpol.unit_name(self.kind.policy, ref)


def manifest(obj: Obj, labels: dict[str, str], variant: int) -> dict[str, Any]:
    """The object ``obj`` as created; ``variant`` picks e.g. an HPA with or without ``spec.behavior``."""
    spec: dict[str, Any]
    kind = obj.kind
    if kind is CRONJOB:
        spec = {
            "schedule": "0 3 1 1 *",  # once a year: never fires during the test
            "concurrencyPolicy": "Forbid",
            "jobTemplate": {
                "spec": {
                    "template": {
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [{"name": "job", "image": "registry.invalid/cleanup:1"}],
                        }
                    }
                }
            },
        }
    elif kind is HPA:
        spec = {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"{obj.name}-absent"},
            "minReplicas": 1,
            "maxReplicas": 5,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
                }
            ],
        }
        if variant % 2 == 0:
            spec["behavior"] = {
                "scaleDown": {
                    "stabilizationWindowSeconds": 120,
                    "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}],
                }
            }
    elif kind is FLUX:
        spec = {
            "interval": "10m",
            "path": f"./apps/{obj.name}",
            "prune": True,
            "sourceRef": {"kind": "GitRepository", "name": "fleet", "namespace": "flux-system"},
        }
        if variant % 2 == 0:
            spec["suspend"] = False
    elif kind is ARGO:
        automated: dict[str, Any] = {"prune": True, "selfHeal": True}
        if variant % 2 == 0:
            automated["enabled"] = True
        spec = {
            "project": "default",
            "destination": {"server": "https://kubernetes.default.svc", "namespace": obj.namespace},
            "source": {"repoURL": "https://git.example.invalid/fleet.git", "path": obj.name, "targetRevision": "HEAD"},
            "syncPolicy": {"automated": automated, "syncOptions": ["CreateNamespace=true"]},
        }
    else:
        body = {"mode": "auto", "threshold": str(variant % 7)}
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": obj.name, "labels": labels, "annotations": {"team": "sre"}},
            "data": body,
        }
    return {
        "apiVersion": kind.api_version,
        "kind": kind.kind,
        "metadata": {"name": obj.name, "labels": labels, "annotations": {"team": "sre"}},
        "spec": spec,
    }


def admin_client(kubeconfig: Path | str, *, pool: int = 64) -> client.ApiClient:
    """An admin API client whose connection pool fits the threads that share it."""
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)  # type: ignore[no-untyped-call]
    cfg.connection_pool_maxsize = pool
    return client.ApiClient(cfg)


def call(
    api: client.ApiClient,
    method: str,
    path: str,
    *,
    body: Any = None,
    query: dict[str, str] | None = None,
    content_type: str = "application/json",
) -> Any:
    """One raw API request (any kind, core or custom), its JSON answer decoded; ApiException when refused."""
    params = api.param_serialize(
        method,
        path,
        query_params=list((query or {}).items()),
        header_params={"Accept": "application/json", "Content-Type": content_type},
        body=body,
        auth_settings=["BearerToken"],
    )
    resp = api.call_api(*params)
    data = resp.read()  # type: ignore[no-untyped-call]
    if resp.status >= 400:
        raise ApiException(http_resp=resp, body=data.decode("utf-8", "replace"))
    return json.loads(data) if data else None


@dataclass
class Fleet:
    """``namespaces`` x ``per_namespace`` labelled objects of mixed kinds in namespaces ``<prefix>-NNN``."""

    api: client.ApiClient
    prefix: str
    namespaces: int
    per_namespace: int
    workers: int = 16
    objects: list[Obj] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [f"{self.prefix}-{i:03d}" for i in range(self.namespaces)]

    @property
    def selector(self) -> str:
        return f"{FANOUT_LABEL}={self.prefix}"

    @property
    def kinds(self) -> list[Kind]:
        return sorted({o.kind for o in self.objects}, key=KINDS.index)

    def _parallel(self, fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="fleet") as pool:
            return list(pool.map(fn, items))

    def create(self) -> None:
        """The namespaces, then their objects, ``workers`` requests in flight."""
        core = client.CoreV1Api(self.api)
        ns_labels = {"drill-test": "1", FANOUT_LABEL: self.prefix}

        def namespace(name: str) -> None:
            body = client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=ns_labels))
            core.create_namespace(body, _preload_content=False)

        self._parallel(namespace, self.names)
        labels = {FANOUT_LABEL: self.prefix, "app.kubernetes.io/part-of": "drill-fanout"}
        todo: list[tuple[Obj, int]] = []
        for i, ns in enumerate(self.names):
            for j in range(self.per_namespace):
                kind = kind_of(i, j)
                todo.append((Obj(kind, ns, f"{kind.short}-{j:03d}"), i + j))

        def create(item: tuple[Obj, int]) -> None:
            obj, variant = item
            call(self.api, "POST", obj.kind.path(obj.namespace), body=manifest(obj, labels, variant))

        self._parallel(create, todo)
        self.objects = [o for o, _ in todo]

    def delete(self) -> None:
        core = client.CoreV1Api(self.api)

        def delete(name: str) -> None:
            try:
                core.delete_namespace(name, propagation_policy="Background", _preload_content=False)
            except ApiException as exc:
                if exc.status != 404:
                    raise

        self._parallel(delete, self.names)

    def listed(self, selector: str | None = None) -> list[tuple[Kind, dict[str, Any]]]:
        """Every object of the fleet's kinds matching ``selector`` (default: the fleet's label), one list per kind."""
        found: list[tuple[Kind, dict[str, Any]]] = []
        for kind in self.kinds:
            items = call(self.api, "GET", kind.path(), query={"labelSelector": selector or self.selector})["items"]
            found.extend((kind, item) for item in items if item["metadata"]["namespace"].startswith(self.prefix))
        return found

    def state(self) -> dict[str, dict[str, Any]]:
        """What a restore must give back exactly: spec (data), labels, annotations and uid of every object."""
        state: dict[str, dict[str, Any]] = {}
        for kind, item in self.listed():
            meta = item["metadata"]
            state[f"{kind.kind}/{meta['namespace']}/{meta['name']}"] = {
                "spec": item.get("spec", item.get("data")),
                "labels": meta.get("labels") or {},
                "annotations": meta.get("annotations") or {},
                "uid": meta["uid"],
            }
        return state

    def marked(self) -> set[str]:
        """Objects that carry drill's label, found server-side as `drill restore --expired` finds them."""
        found = self.listed(f"{self.selector},{kpol.MARK_LABEL}")
        return {f"{k.kind}/{i['metadata']['namespace']}/{i['metadata']['name']}" for k, i in found}

    def expire_markers(self) -> int:
        """As the admin, move every marker's ``deadline_at`` a minute into the past; returns how many."""
        found = self.listed(f"{self.selector},{kpol.MARK_LABEL}")

        def expire(item: tuple[Kind, dict[str, Any]]) -> None:
            kind, obj = item
            meta = obj["metadata"]
            text = meta["annotations"][policy_base.MARKER_KEY]
            data = json.loads(text)
            data["deadline_at"] = time.time() - 60
            ops = [
                {"op": "test", "path": MARKER_PTR, "value": text},
                {"op": "replace", "path": MARKER_PTR, "value": json.dumps(data, sort_keys=True)},
            ]
            call(
                self.api,
                "PATCH",
                kind.path(meta["namespace"], meta["name"]),
                body=ops,
                content_type="application/json-patch+json",
            )

        self._parallel(expire, found)
        return len(found)

    def leases(self) -> list[str]:
        """The namespaces of the fleet where a drill Lease is still held."""
        items = call(
            self.api,
            "GET",
            "/apis/coordination.k8s.io/v1/leases",
            query={"fieldSelector": "metadata.name=drill-lock"},
        )["items"]
        return sorted(i["metadata"]["namespace"] for i in items if i["metadata"]["namespace"].startswith(self.prefix))

    def policies(self) -> list[dict[str, Any]]:
        """The drill's policies: one per kind, each selecting the fleet's label in every namespace of the target."""
        out: list[dict[str, Any]] = []
        for kind in self.kinds:
            policy: dict[str, Any] = {
                "name": kind.policy,
                "kind": kind.policy_kind,
                "selector": {"labels": self.selector},
            }
            if kind is SWITCH:
                policy.update(apiVersion=kind.api_version, resourceKind=kind.kind, patch=SWITCH_PATCH)
            out.append(policy)
        return out

    def target(self, kubeconfig: Path | str, *, concurrency: int | None = None) -> dict[str, Any]:
        return {
            "kind": "kubernetes",
            "kubeconfig": str(kubeconfig),
            "namespaces": self.names,
            "mitigation": {"namespace": self.names[0], "deployment": "web", "replicas": 3},
            **({"concurrency": concurrency} if concurrency is not None else {}),
        }

    def add_web(self) -> None:
        """drillkit's ``web`` Deployment (3 replicas) in the first namespace: the experiment's fault scales it."""
        client.AppsV1Api(self.api).create_namespaced_deployment(self.names[0], deployment("web", 3))


# -- fixtures and processes --------------------------------------------------------------------------------------


class Run(drillkit.Run):
    def run_id(self) -> str:
        rows = wait_for(
            lambda: self.alive() and journal_rows(self.env.home, "SELECT run_id FROM runs"),
            timeout_s=60,
            what="the run in its journal",
        )
        assert isinstance(rows, list) and len(rows) == 1, rows
        return str(rows[0][0])


@pytest.fixture(scope="module")
def fleet(kube_cluster: KubeCluster) -> Iterator[Fleet]:
    """The module's 50 namespaces x 4 objects (and ``web``), deleted at the end."""
    api = admin_client(kube_cluster.kubeconfig)
    built = Fleet(api, f"t-fanout-{uuid.uuid4().hex[:6]}", NAMESPACES, PER_NAMESPACE)
    try:
        built.create()
        built.add_web()
        yield built
    finally:
        built.delete()
        api.close()  # type: ignore[no-untyped-call]


@pytest.fixture(scope="module")
def snapshot(fleet: Fleet) -> dict[str, dict[str, Any]]:
    state = fleet.state()
    assert len(state) == NAMESPACES * PER_NAMESPACE, sorted(state)[:5]
    return state


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Run]]:
    with drillkit.runs(tmp_path, auto=AUTO, kind=Run) as start:
        yield start


def write_drill(fleet: Fleet, folder: Path, kubeconfig: Path) -> Path:
    return drillkit.write_drill(
        folder,
        fleet.names[0],
        kubeconfig,
        name="fanout",
        policies=fleet.policies(),
        target=fleet.target(kubeconfig, concurrency=CONCURRENCY),
    )


@pytest.fixture
def ready(fleet: Fleet, snapshot: dict[str, dict[str, Any]]) -> Fleet:
    """The fleet as snapshotted, nothing marked, nothing locked, ``web`` available (the steady state)."""
    assert fleet.state() == snapshot, "the fleet is not as snapshotted: an earlier test left it changed"
    assert not fleet.marked()
    wait_for(lambda: not fleet.leases(), timeout_s=45, what="the fleet's Leases to be freed")
    wait_for(lambda: drillkit.web_available(fleet.api, fleet.names[0]), timeout_s=60, what="web available")
    return fleet


def stable(read: Callable[[], set[str]], *, quiet_s: float = 1.0, timeout_s: float = 30.0) -> set[str]:
    """``read()`` once it has not changed for ``quiet_s`` (requests in flight when a process died have landed)."""
    last, since = read(), time.monotonic()

    def quiet() -> bool:
        nonlocal last, since
        now = read()
        if now != last:
            last, since = now, time.monotonic()
        return time.monotonic() - since >= quiet_s

    wait_for(quiet, timeout_s=timeout_s, what="the marked objects to stop changing", interval_s=0.2)
    return last


def patches_by_object(cluster: KubeCluster, fleet: Fleet, *, after: float) -> dict[str, list[dict[str, Any]]]:
    """PATCH audit events of the fleet's objects received after ``after`` (epoch s), by ``Kind/ns/name``."""
    plural = {k.plural: k for k in KINDS}
    found: dict[str, list[dict[str, Any]]] = {}
    with cluster.audit_log.open(encoding="utf-8") as fh:
        for line in fh:
            if fleet.prefix not in line or '"verb":"patch"' not in line:
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            ref = event.get("objectRef", {})
            if event.get("stage") != "ResponseComplete" or ref.get("resource") not in plural:
                continue
            received = event["requestReceivedTimestamp"].replace("Z", "+00:00")
            if _epoch(received) < after:
                continue
            key = f"{plural[ref['resource']].kind}/{ref['namespace']}/{ref['name']}"
            found.setdefault(key, []).append(event)
    return found


def by_state(home: Path) -> dict[str, int]:
    """How many of the run's suspensions are in each state, from its journal."""
    rows = journal_rows(home, "SELECT state, count(*) FROM suspensions GROUP BY state")
    return {str(state): int(str(count)) for state, count in rows}


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


# -- 1. a clean run ----------------------------------------------------------------------------------------------


def test_clean_run_suspends_and_restores_every_object_once(
    *, kube_cluster: KubeCluster, ready: Fleet, snapshot: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    fleet = ready
    drill = write_drill(fleet, tmp_path / "drill", kube_cluster.kubeconfig)
    env = DrillEnv(home=tmp_path / "home", archive=tmp_path / "archive")
    started = time.time()

    done = drillkit.cli("run", str(drill), "--plain", "--auto-respond", AUTO, env=env, timeout=180)

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert fleet.state() == snapshot
    assert not fleet.marked()
    assert not fleet.leases()
    [(run_id,)] = journal_rows(env.home, "SELECT run_id FROM runs")
    units = {o.unit for o in fleet.objects}
    states = journal_rows(env.home, "SELECT policy, state FROM suspensions WHERE run_id = ?", run_id)
    assert {p for p, _ in states} == units and {s for _, s in states} == {"restored"}, states[:5]
    verified = journal_rows(
        env.home,
        "SELECT name, count(*) FROM events WHERE run_id = ? AND name IN ('suspend', 'restore')"
        " AND json_extract(data, '$.verified') = 1 GROUP BY name",
        run_id,
    )
    assert sorted(verified) == [("restore", len(units)), ("suspend", len(units))], verified
    # The intents went to the journal a batch at a time (one transaction, one timestamp per batch).
    batch = CONCURRENCY * suspending.BATCH_PER_WORKER
    batches = journal_rows(
        env.home, "SELECT count(DISTINCT at) FROM events WHERE run_id = ? AND name = 'suspend.intent'", run_id
    )
    assert batches == [(-(-len(units) // batch),)], batches
    # Exactly one write per object each way: the claim (marker + suspended values) and the restore. 409s (an HPA's
    # status written by its controller between the claim's GET and PATCH) are retries, not writes.
    patches = patches_by_object(kube_cluster, fleet, after=started)
    problems: list[str] = []
    for obj in fleet.objects:
        events = patches.get(obj.key, [])
        real = [e for e in events if "dryRun=All" not in e["requestURI"] and e["responseStatus"]["code"] < 300]
        dry = [e for e in events if "dryRun=All" in e["requestURI"]]
        if len(real) != 2 or len(dry) != 1:
            problems.append(f"{obj.key}: {len(real)} writes, {len(dry)} dry runs")
    assert not problems, problems[:10]


# -- 2. SIGKILL in the middle of suspending; `drill restore RUN` ---------------------------------------------------


def test_sigkill_while_suspending_then_restore_run(
    *,
    kube_cluster: KubeCluster,
    ready: Fleet,
    snapshot: dict[str, dict[str, Any]],
    spawn: Callable[..., Run],
    tmp_path: Path,
) -> None:
    fleet = ready
    total = len(fleet.objects)
    drill = write_drill(fleet, tmp_path / "drill", kube_cluster.kubeconfig)
    run = spawn(drill, "run")
    run_id = run.run_id()

    def midway() -> int:
        run.alive()
        count = len(fleet.marked())
        assert count < 0.9 * total, f"the run marked {count} of {total} objects before the test saw it midway"
        return count if count >= 0.3 * total else 0

    seen = wait_for(midway, timeout_s=90, what="30 % of the objects marked", interval_s=0.02)
    run.kill()
    marked = stable(fleet.marked)
    intents = journal_rows(run.env.home, "SELECT prior_known, count(*) FROM suspensions GROUP BY prior_known")
    held = fleet.leases()
    assert held == fleet.names, f"the dead run's Leases: {len(held)} of {NAMESPACES}"
    # What the kill left: objects marked (not all), some intents possibly without their prior (claims in flight).
    assert 0 < len(marked) < total, (seen, len(marked))
    detail = f"killed with {seen} marked (then {len(marked)}); journal intents by prior_known: {intents}"
    print(detail)  # shown with -s: where the kill landed (claims in flight: intents without their prior)

    done = drillkit.cli("restore", run_id, env=run.env, timeout=180)

    assert done.returncode == 0, f"{detail}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert fleet.state() == snapshot, detail
    assert not fleet.marked(), detail
    assert not fleet.leases(), detail
    states = by_state(run.env.home)
    assert states.get("restored") == len(marked), (states, detail)
    assert set(states) <= {"restored", "not-claimed"}, (states, detail)
    said = [line for line in done.stdout.splitlines() if line.startswith("restored and verified: ")]
    assert len(said) == len(marked), (len(said), detail)


# -- 3. SIGKILL in the middle of restoring; `drill restore --expired` from the markers alone -----------------------


def test_sigkill_while_restoring_then_restore_expired_from_the_markers(
    *,
    kube_cluster: KubeCluster,
    ready: Fleet,
    snapshot: dict[str, dict[str, Any]],
    spawn: Callable[..., Run],
    tmp_path: Path,
) -> None:
    fleet = ready
    total = len(fleet.objects)
    drill = write_drill(fleet, tmp_path / "drill", kube_cluster.kubeconfig)
    run = spawn(drill, "run", pause="restoring")
    run_id = run.run_id()
    hooks = run.env.hooks_dir
    paused, resume = hooks / f"{run_id}.restoring.paused", hooks / f"{run_id}.restoring.resume"
    # Every worker of the first group holds at the pause before its restore (intent journaled, nothing written).
    wait_for(lambda: run.alive() and paused.exists(), timeout_s=120, what="the run to pause at restoring")
    assert len(fleet.marked()) == total
    resume.touch()  # let them go ...

    def some_restored() -> int:
        run.alive()
        restored = total - len(fleet.marked())
        assert restored < total, "the run restored everything before the test held it"
        return restored if restored >= 0.1 * total else 0

    wait_for(some_restored, timeout_s=60, what="10 % of the objects restored", interval_s=0.02)
    resume.unlink()  # ... and hold every worker at its next pause: the restores in flight end, no new one starts
    marked = stable(fleet.marked)
    run.alive()
    intents = by_state(run.env.home)
    run.kill()
    assert stable(fleet.marked) == marked
    assert 0 < len(marked) < total, len(marked)
    # Some objects have their restore intent journaled and are still marked: held at the pause when killed.
    assert intents.get("restoring", 0) > 0, intents
    detail = f"killed with {len(marked)} of {total} still marked; journal states {intents}"
    print(detail)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    empty = DrillEnv(home=tmp_path / "empty-home", archive=elsewhere / "archive")  # no journal of the run
    assert fleet.expire_markers() == len(marked)

    late = drillkit.cli("restore", "--expired", "--kubeconfig", str(kube_cluster.kubeconfig), env=empty, cwd=elsewhere)

    assert late.returncode == 0, f"{detail}\n{late.stdout[-3000:]}\n{late.stderr[-3000:]}"
    restored = [
        line
        for line in late.stdout.splitlines()
        if line.startswith(RESTORED_FROM_MARKER) and f"of run {run_id} " in line and fleet.prefix in line
    ]
    assert len(restored) == len(marked), (len(restored), detail)
    assert fleet.state() == snapshot, detail
    assert not fleet.marked(), detail
    assert journal_rows(empty.home, "SELECT count(*) FROM runs") in ([], [(0,)])  # it never knew the run
