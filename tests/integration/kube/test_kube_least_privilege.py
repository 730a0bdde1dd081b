"""Least privilege, shown with the audit log: a whole drill under exactly the shipped RBAC, then without each grant.

The shipped ``drills/kubernetes/manifests/rbac.yaml`` is applied into a fresh namespace (its namespace ``shop``
substituted; its two cluster-scoped objects get the namespace as a name suffix so that tests never share them),
a token of its ServiceAccount ``drill`` comes from the TokenRequest API, and ``drill run`` uses a kubeconfig
holding only that token. The drill is drillkit's (the web Deployment scaled to zero by chaostoolkit-kubernetes,
the simulated responder scales it back) on the shipped example app ``app.yaml``, with one policy per kind of
remediation automation it has, each selected by label: every grant of the Role is exercised.

Granularity: each verb of each rule (RBAC grants a rule's verbs to all its resources together). Each is
removed in turn from the exact shipped file and a fresh namespace runs the same drill. What is expected of
each is in ``EXPECTED`` with the reason; a rule the shipped file gains without an expectation fails the test.
In short:

- get/list/patch of every suspended kind, get/create/update/delete of the Lease, watch of deployments (the
  steady-state probe runs in preflight): refused by preflight (exit 2), the missing verb and resource named, no
  write but the target lock taken and freed, every object unchanged;
- patch of deployments (the experiment's fault): drill cannot know what an experiment's providers need; the
  fault is refused, the run aborts, every suspension is restored and verified, exit 4 (acceptable);
- selfsubjectaccessreviews: not needed on a cluster with the default roles (system:basic-user grants it).

"Write" in the audit log: create/update/patch/delete requests by the ServiceAccount user. The exact set is
asserted, not "none": a preflight takes the target lock (the Lease ``drill-lock``: get, create) before it can
select objects, and frees it when it fails (delete); its dry runs are PATCHes with ``dryRun=All``, which write
nothing; SelfSubjectAccessReviews are cluster-scoped creates that store nothing."""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, dynamic, utils
from kubernetes.client.rest import ApiException

from tests.conftest import read_report, reported_dir
from tests.integration.kube import drillkit
from tests.integration.kube.conftest import KubeCluster, wait_until

pytestmark = pytest.mark.kube

REPO = Path(__file__).resolve().parents[3]
MANIFESTS = REPO / "drills" / "kubernetes" / "manifests"
RBAC_YAML = MANIFESTS / "rbac.yaml"
APP_YAML = MANIFESTS / "app.yaml"
SHIPPED_NS = "shop"
AUTO_RESPOND = "ack=1s,diagnose=2s,mitigate=3s,resolve=6s"
LEASE = "drill-lock"

# -- the audit log ------------------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Write:
    """One write request of the audit log, as much as the assertions need."""

    verb: str
    resource: str  # "leases", "horizontalpodautoscalers", "deployments/scale", ...
    name: str
    code: int
    dry_run: bool = False


def _write(ev: dict[str, Any]) -> Write:
    ref = ev.get("objectRef") or {}
    resource = str(ref.get("resource", ""))
    if ref.get("subresource"):
        resource += f"/{ref['subresource']}"
    return Write(
        verb=str(ev["verb"]),
        resource=resource,
        name=str(ref.get("name", "")),
        code=int((ev.get("responseStatus") or {}).get("code", 0)),
        dry_run="dryRun=All" in str(ev.get("requestURI", "")),
    )


class AuditWindow:
    """The write events of one user during one step, closed by a sentinel request of that same user.

    A step's requests are audited right after their response (``--audit-log-mode=blocking`` writes the event
    in the request's own goroutine, after the body): a DELETE of a ConfigMap that does not exist, sent by the same
    user after the step and awaited in the log, closes the window without a sleep.
    """

    def __init__(self, cluster: KubeCluster, api: client.ApiClient, user: str) -> None:
        self.cluster, self.api, self.user = cluster, api, user
        self._before = {ev["auditID"] for ev in cluster.audit_events(user=user)}

    def close(self, sentinel_ns: str) -> list[dict[str, Any]]:
        name = f"audit-sentinel-{uuid.uuid4().hex[:10]}"
        with pytest.raises(ApiException) as refused:  # 404 for the admin, 403 for the ServiceAccount: audited
            client.CoreV1Api(self.api).delete_namespaced_config_map(name, sentinel_ns)
        assert refused.value.status in (403, 404)

        def events() -> tuple[list[dict[str, Any]]] | None:
            found = [ev for ev in self.cluster.audit_events(user=self.user) if ev["auditID"] not in self._before]
            if not any((ev.get("objectRef") or {}).get("name") == name for ev in found):
                return None
            return ([ev for ev in found if (ev.get("objectRef") or {}).get("name") != name],)

        return wait_until(events, timeout=30, what=f"the audit sentinel {name} of {self.user}")[0]


def by_scope(events: list[dict[str, Any]]) -> dict[str, list[Write]]:
    """Writes by namespace ("" for cluster-scoped requests), each list sorted."""
    scoped: dict[str, list[Write]] = {}
    for ev in events:
        scoped.setdefault(str((ev.get("objectRef") or {}).get("namespace", "")), []).append(_write(ev))
    return {ns: sorted(ws) for ns, ws in scoped.items()}


def lock_taken_and_freed() -> list[Write]:
    """The Lease writes of a preflight that failed after taking the target lock: created, then deleted."""
    return [Write("create", "leases", LEASE, 201), Write("delete", "leases", LEASE, 200)]


def only_access_reviews(cluster_scoped: list[Write]) -> bool:
    return all(w == Write("create", "selfsubjectaccessreviews", "", 201) for w in cluster_scoped)


# -- manifests ----------------------------------------------------------------------------------------------


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def _retarget(doc: dict[str, Any], ns: str) -> dict[str, Any]:
    """``doc`` with the shipped namespace replaced by ``ns`` (and cluster-scoped names made unique by it)."""
    doc = copy.deepcopy(doc)
    meta = doc["metadata"]
    if "namespace" in meta:
        assert meta["namespace"] == SHIPPED_NS, f"{doc['kind']} {meta['name']} is not in {SHIPPED_NS}"
        meta["namespace"] = ns
    elif doc["kind"] in ("ClusterRole", "ClusterRoleBinding"):
        meta["name"] = f"{meta['name']}-{ns}"
    for subject in doc.get("subjects") or []:
        if subject.get("namespace") == SHIPPED_NS:
            subject["namespace"] = ns
    if doc["kind"] == "ClusterRoleBinding":
        doc["roleRef"]["name"] = f"{doc['roleRef']['name']}-{ns}"
    return doc


@dataclass(frozen=True)
class Removal:
    """One grant taken out of the shipped RBAC: a verb of a rule, or one resource of a rule."""

    role_kind: str  # Role or ClusterRole
    rule: int
    verb: str | None = None
    resource: str | None = None

    def apply(self, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        docs = copy.deepcopy(docs)
        role = next(d for d in docs if d["kind"] == self.role_kind)
        rule = role["rules"][self.rule]
        if self.verb is not None:
            rule["verbs"] = [v for v in rule["verbs"] if v != self.verb]
        if self.resource is not None:
            rule["resources"] = [r for r in rule["resources"] if r != self.resource]
        role["rules"] = [r for r in role["rules"] if r["verbs"] and r["resources"]]
        return docs

    def key(self, docs: list[dict[str, Any]]) -> tuple[str, str, str]:
        """(apiGroup, resource(s), verb or "*") of what is removed, for EXPECTED."""
        rule = next(d for d in docs if d["kind"] == self.role_kind)["rules"][self.rule]
        group = ",".join(rule["apiGroups"])
        if self.resource is not None:
            return group, self.resource, "*"
        return group, ",".join(rule["resources"]), str(self.verb)


def removals() -> list[Removal]:
    docs = _docs(RBAC_YAML)
    found: list[Removal] = []
    for role in (d for d in docs if d["kind"] in ("Role", "ClusterRole")):
        for index, rule in enumerate(role["rules"]):
            found.extend(Removal(role["kind"], index, verb=verb) for verb in rule["verbs"])
            if len(rule["resources"]) > 1:
                found.extend(Removal(role["kind"], index, resource=res) for res in rule["resources"] if "/" in res)
    return found


def _removal_id(removal: Removal) -> str:
    group, resources, verb = removal.key(_docs(RBAC_YAML))
    what = resources if verb == "*" else f"{verb}-{resources}"
    return f"{removal.role_kind}-{what}.{group or 'core'}".replace(",", "+").replace("/", "_")


def apply_rbac(api: client.ApiClient, docs: list[dict[str, Any]], ns: str) -> list[tuple[str, str]]:
    """Create the (retargeted) RBAC objects; returns the cluster-scoped ones to delete afterwards."""
    cluster_scoped: list[tuple[str, str]] = []
    for doc in docs:
        body = _retarget(doc, ns)
        utils.create_from_dict(api, body)
        if "namespace" not in body["metadata"]:
            cluster_scoped.append((body["kind"], body["metadata"]["name"]))
    return cluster_scoped


def delete_cluster_scoped(api: client.ApiClient, objects: list[tuple[str, str]]) -> None:
    rbac = client.RbacAuthorizationV1Api(api)
    for kind, name in objects:
        try:
            if kind == "ClusterRole":
                rbac.delete_cluster_role(name)
            else:
                rbac.delete_cluster_role_binding(name)
        except ApiException as exc:
            if exc.status != 404:
                raise


def app_objects(ns: str) -> list[dict[str, Any]]:
    """The shipped example app (app.yaml) without its Namespace, in ``ns``."""
    return [_retarget(d, ns) for d in _docs(APP_YAML) if d["kind"] != "Namespace"]


def apply_app(api: client.ApiClient, ns: str) -> None:
    dyn = dynamic.DynamicClient(api)
    for body in app_objects(ns):
        dyn.resources.get(api_version=body["apiVersion"], kind=body["kind"]).create(body=body, namespace=ns)


def app_state(api: client.ApiClient, ns: str, *, generation: bool) -> dict[str, Any]:
    """spec, labels, annotations and uid (and generation: was the spec written at all) of every app object."""
    dyn = dynamic.DynamicClient(api)
    state: dict[str, Any] = {}
    for body in app_objects(ns):
        name = body["metadata"]["name"]
        obj = dyn.resources.get(api_version=body["apiVersion"], kind=body["kind"]).get(name=name, namespace=ns)
        obj = obj.to_dict()
        meta = obj["metadata"]
        state[f"{body['kind']}/{name}"] = {
            "spec": obj.get("spec"),
            "labels": meta.get("labels") or {},
            "annotations": meta.get("annotations") or {},
            "uid": meta["uid"],
            **({"generation": meta.get("generation")} if generation else {}),
        }
    return state


def drill_policies() -> list[dict[str, Any]]:
    """One policy per kind of remediation automation app.yaml has, each selecting by label."""
    selector = {"labels": "drill.dev/remediation=true"}
    return [
        {"name": "autoscaler", "kind": "hpa", "selector": selector},
        {"name": "restarter", "kind": "cronjob", "selector": selector},
        {"name": "keda", "kind": "keda-scaledobject", "selector": selector},
        {"name": "argocd", "kind": "argocd-application", "selector": selector},
        {"name": "flux", "kind": "flux", "selector": selector},
        {
            "name": "operator",
            "kind": "generic",
            "apiVersion": "remediation.drill.dev/v1",
            "resourceKind": "Remediator",
            "patch": {"spec": {"suspend": True}},
            "selector": selector,
        },
    ]


def suspended_units(ns: str) -> set[str]:
    return {
        f"autoscaler:autoscaling/v2:HorizontalPodAutoscaler:{ns}/web",
        f"restarter:batch/v1:CronJob:{ns}/web-restarter",
        f"keda:keda.sh/v1alpha1:ScaledObject:{ns}/web",
        f"argocd:argoproj.io/v1alpha1:Application:{ns}/shop",
        f"flux:kustomize.toolkit.fluxcd.io/v1:Kustomization:{ns}/shop",
        f"operator:remediation.drill.dev/v1:Remediator:{ns}/web",
    }


def sa_token(api: client.ApiClient, ns: str) -> str:
    req = client.CoreV1Api(api).create_namespaced_service_account_token(
        "drill",
        ns,
        client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)),
    )
    return str(req.status.token)


def write_kubeconfig(path: Path, cluster: KubeCluster, token: str, ns: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "drill-test",
                        "cluster": {"server": cluster.server, "certificate-authority": str(cluster.ca_file)},
                    }
                ],
                "users": [{"name": "drill", "user": {"token": token}}],
                "contexts": [{"name": "drill", "context": {"cluster": "drill-test", "user": "drill", "namespace": ns}}],
                "current-context": "drill",
            }
        ),
        encoding="utf-8",
    )
    path.chmod(0o600)
    return path


# -- fixtures -----------------------------------------------------------------------------------------------


@dataclass
class Shop:
    """The example app in a fresh namespace, (a variant of) the shipped RBAC, and drill running as its SA."""

    ns: str
    user: str
    kubeconfig: Path
    sa_api: client.ApiClient
    drill: Path
    run_drill: Callable[..., Any]
    scratch: Path

    def run(self, **env: str) -> Any:
        """``drill run`` of drillkit's drill on the shop, as the ServiceAccount, the responder simulated."""
        return self.run_drill("run", str(self.drill), "--plain", "--auto-respond", AUTO_RESPOND, timeout=180, **env)


@pytest.fixture
def make_shop(
    kube_cluster: KubeCluster,
    kube_api: client.ApiClient,
    kube_namespace: str,
    run_drill: Callable[..., Any],
    tmp_path: Path,
) -> Iterator[Callable[[list[dict[str, Any]]], Shop]]:
    made: list[tuple[client.ApiClient, list[tuple[str, str]]]] = []

    def make(rbac_docs: list[dict[str, Any]]) -> Shop:
        ns = kube_namespace
        cluster_scoped = apply_rbac(kube_api, rbac_docs, ns)
        sa_api = None
        try:
            apply_app(kube_api, ns)
            wait_until(lambda: drillkit.web_available(kube_api, ns), timeout=60, what="web available")
            token = sa_token(kube_api, ns)
            sa_api = kube_cluster.api_client(token=token)
        finally:
            made.append((sa_api, cluster_scoped))
        kubeconfig = write_kubeconfig(tmp_path / "drill-sa.kubeconfig", kube_cluster, token, ns)
        drill = drillkit.write_drill(tmp_path / "drill", ns, kubeconfig, policies=drill_policies())
        user = f"system:serviceaccount:{ns}:drill"
        return Shop(ns, user, kubeconfig, sa_api, drill, run_drill, tmp_path)

    yield make
    for sa_api, cluster_scoped in made:
        if sa_api is not None:
            sa_api.close()
        delete_cluster_scoped(kube_api, cluster_scoped)


def _lease_gone(api: client.ApiClient, ns: str) -> bool:
    try:
        client.CoordinationV1Api(api).read_namespaced_lease(LEASE, ns)
    except ApiException as exc:
        if exc.status == 404:
            return True
        raise
    return False


# -- what each grant is for -----------------------------------------------------------------------------------

PREFLIGHT = "refused by preflight"
NOT_NEEDED = "not needed by this drill"
FAULT = "needed only by the experiment's fault"


@dataclass(frozen=True)
class Expect:
    outcome: str
    why: str
    writes: tuple[tuple[Write, ...], ...] = ()
    """PREFLIGHT: the ServiceAccount's writes in its namespace during the run, one of these exactly."""
    lease_left: bool = False
    """PREFLIGHT: the refused run could not free its Lease; it expires 30 s after it was taken (fails closed)."""


LOCK = (tuple(lock_taken_and_freed()),)
EXPECTED: dict[tuple[str, str, str], Expect] = {
    **{
        (group, resource, verb): Expect(PREFLIGHT, why, LOCK)
        for group, resource in (
            ("autoscaling", "horizontalpodautoscalers"),
            ("batch", "cronjobs"),
            ("keda.sh", "scaledobjects"),
            ("argoproj.io", "applications"),
            ("kustomize.toolkit.fluxcd.io", "kustomizations"),
            ("remediation.drill.dev", "remediators"),
        )
        for verb, why in (
            ("get", "preflight reads each selected object for a foreign marker"),
            ("list", "preflight lists the objects the label selector selects"),
            ("patch", "preflight asks a SelfSubjectAccessReview for the patch of each suspension"),
        )
    },
    ("apps", "deployments", "patch"): Expect(
        FAULT, "chaosk8s scale_deployment (the fault and its rollback) and the simulated responder patch web"
    ),
    ("apps", "deployments", "watch"): Expect(
        PREFLIGHT, "the steady-state probe (chaosk8s deployment_fully_available) watches web, in preflight", LOCK
    ),
    ("coordination.k8s.io", "leases", "get"): Expect(
        PREFLIGHT, "taking the lock reads the Lease first: refused before any write", ((),)
    ),
    ("coordination.k8s.io", "leases", "create"): Expect(
        PREFLIGHT,
        "taking the lock creates the Lease: the refused create is the only write",
        ((Write("create", "leases", "", 403),),),
    ),
    ("coordination.k8s.io", "leases", "update"): Expect(
        PREFLIGHT,
        "the heartbeat renews the Lease; unrenewed, the lock would lapse mid-run: preflight asks and refuses",
        LOCK,
    ),
    ("coordination.k8s.io", "leases", "delete"): Expect(
        PREFLIGHT,
        "the run frees its lock at the end: preflight asks and refuses; the refused release is the last write",
        ((Write("create", "leases", LEASE, 201), Write("delete", "leases", LEASE, 403)),),
        lease_left=True,
    ),
    ("authorization.k8s.io", "selfsubjectaccessreviews", "create"): Expect(
        NOT_NEEDED, "system:basic-user grants it to every authenticated user on a cluster with the default roles"
    ),
}


def _permission_named(stderr: str, verb: str, resource: str) -> bool:
    """stderr names the verb and the resource, as the API server says it or as preflight does."""
    resource = resource.split(",", maxsplit=1)[0]
    return bool(
        re.search(rf'cannot {verb} resource \\?"{re.escape(resource)}\\?"', stderr)
        or re.search(rf"not permitted: {verb} {re.escape(resource)}\b", stderr)
    )


# -- the shipped RBAC is enough ----------------------------------------------------------------------------


def assert_whole_drill_passed(
    done: Any, shop: Shop, kube_api: client.ApiClient, before: dict[str, Any], *, lease_freed: bool = True
) -> None:
    """Exit 0, every selected object suspended and restored to exactly its snapshot (``before``, no generation)."""
    assert done.returncode == 0, done.stdout + done.stderr
    report = read_report(reported_dir(done.stdout))
    assert {p["name"] for p in report["policies"]} == suspended_units(shop.ns)  # type: ignore[index,union-attr]
    assert app_state(kube_api, shop.ns, generation=False) == before
    assert _lease_gone(kube_api, shop.ns) is lease_freed


SUSPEND_AND_RESTORE = {
    ("patch", "horizontalpodautoscalers"),
    ("patch", "cronjobs"),
    ("patch", "scaledobjects"),
    ("patch", "applications"),
    ("patch", "kustomizations"),
    ("patch", "remediators"),
}


def test_whole_drill_passes_with_exactly_the_shipped_rbac(
    kube_cluster: KubeCluster,
    kube_api: client.ApiClient,
    make_shop: Callable[[list[dict[str, Any]]], Shop],
) -> None:
    shop = make_shop(_docs(RBAC_YAML))
    ns = shop.ns
    before = app_state(kube_api, ns, generation=False)
    audit = AuditWindow(kube_cluster, shop.sa_api, shop.user)

    done = shop.run()

    writes = by_scope(audit.close(ns))
    assert_whole_drill_passed(done, shop, kube_api, before)
    # every write was in its own namespace, plus access reviews (cluster-scoped, they store nothing)
    assert set(writes) <= {ns, ""}, writes
    assert only_access_reviews(writes.get("", []))
    assert [w for w in writes[ns] if not 200 <= w.code < 300] == [], "no write was refused"
    done_writes = {(w.verb, w.resource) for w in writes[ns] if not w.dry_run} - {("update", "leases")}  # renewals
    assert done_writes == SUSPEND_AND_RESTORE | {
        ("create", "leases"),
        ("delete", "leases"),
        ("patch", "deployments"),  # the fault, its rollback and the simulated responder's mitigation
    }
    # each suspension: one dry run in preflight, one claim, one restore
    for _, resource in SUSPEND_AND_RESTORE:
        assert sorted(w.dry_run for w in writes[ns] if w.resource == resource) == [False, False, True], resource


# -- without each grant ------------------------------------------------------------------------------------


@pytest.mark.parametrize("removal", removals(), ids=_removal_id)
def test_each_grant_removed(
    removal: Removal,
    kube_cluster: KubeCluster,
    kube_api: client.ApiClient,
    make_shop: Callable[[list[dict[str, Any]]], Shop],
) -> None:
    shipped = _docs(RBAC_YAML)
    key = removal.key(shipped)
    expect = EXPECTED.get(key)
    assert expect is not None, f"rbac.yaml grants {key} that this test has no expectation for: add it to EXPECTED"
    _, resource, verb = key
    shop = make_shop(removal.apply(shipped))
    ns = shop.ns
    before = app_state(kube_api, ns, generation=True)
    audit = AuditWindow(kube_cluster, shop.sa_api, shop.user)

    done = shop.run()

    writes = by_scope(audit.close(ns))
    assert set(writes) <= {ns, ""}, writes
    assert only_access_reviews(writes.get("", []))
    mine = writes.get(ns, [])
    if expect.outcome == PREFLIGHT:
        assert done.returncode == 2, f"{expect.why}\nthe ServiceAccount wrote {mine}\n{done.stdout}{done.stderr}"
        assert "preflight failed, nothing was changed" in done.stderr
        assert _permission_named(done.stderr, verb, resource), done.stderr
        assert tuple(w for w in mine if not w.dry_run) in expect.writes, f"the ServiceAccount wrote {mine}"
        assert app_state(kube_api, ns, generation=True) == before
        assert _lease_gone(kube_api, ns) is not expect.lease_left
        if expect.lease_left:
            lease = client.CoordinationV1Api(kube_api).read_namespaced_lease(LEASE, ns)
            assert lease.spec.lease_duration_seconds == 30  # held by a run that is over: it expires, never stays
    elif expect.outcome == NOT_NEEDED:
        assert_whole_drill_passed(done, shop, kube_api, {k: _no_gen(v) for k, v in before.items()})
    elif expect.outcome == FAULT:
        # drill cannot know what an experiment's Python providers will need: the fault fails (403), the run
        # aborts, every suspension is restored and verified, exit 4. Acceptable: automation is back.
        assert done.returncode == 4, done.stdout + done.stderr
        assert "fault injection failed: scale-web-to-zero" in done.stderr
        assert "automation restored" in done.stderr
        after = app_state(kube_api, ns, generation=True)
        assert after["Deployment/web"] == before["Deployment/web"]  # never scaled: the fault was refused
        assert {k: _no_gen(v) for k, v in after.items()} == {k: _no_gen(v) for k, v in before.items()}
        deployment_writes = {w for w in mine if w.resource == "deployments"}
        assert deployment_writes == {Write("patch", "deployments", "web", 403)}  # the fault and the rollback
        assert {(w.verb, w.resource) for w in mine if 200 <= w.code < 300} >= SUSPEND_AND_RESTORE
        assert _lease_gone(kube_api, ns)
    else:
        pytest.fail(f"no check for outcome {expect.outcome!r}")


def _no_gen(state: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in state.items() if k != "generation"}


# -- the steady state's own permission --------------------------------------------------------------------


def without_deployments_watch(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    docs = copy.deepcopy(docs)
    for rule in next(d for d in docs if d["kind"] == "Role")["rules"]:
        if "apps" in rule["apiGroups"] and "deployments" in rule["resources"]:
            rule["verbs"] = [v for v in rule["verbs"] if v not in ("watch", "*")]
    return docs


def test_steady_state_refused_by_rbac_names_the_missing_permission(
    kube_cluster: KubeCluster,
    kube_api: client.ApiClient,
    make_shop: Callable[[list[dict[str, Any]]], Shop],
) -> None:
    """Without watch on deployments, the steady-state probe is refused in preflight: exit 2, and the user must
    be told which permission is missing (the API server's message says ``cannot watch resource "deployments"``)."""
    shop = make_shop(without_deployments_watch(_docs(RBAC_YAML)))
    before = app_state(kube_api, shop.ns, generation=True)
    audit = AuditWindow(kube_cluster, shop.sa_api, shop.user)

    done = shop.run()

    writes = by_scope(audit.close(shop.ns))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "steady state holds" in done.stderr
    assert tuple(w for w in writes.get(shop.ns, []) if not w.dry_run) in LOCK, writes
    assert app_state(kube_api, shop.ns, generation=True) == before
    assert _permission_named(done.stderr, "watch", "deployments"), done.stderr
