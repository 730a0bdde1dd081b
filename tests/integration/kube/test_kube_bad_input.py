"""Bad drill files fail before any change: a clear error (exit 2), no write in the audit log, objects unchanged.

Each drill runs as the test's own user (the admin kubeconfig of the test control plane): a user that could
write anything, so "no write" is drill's doing, not RBAC's. The audit window of each attempt is closed by a
sentinel request of that user (see ``AuditWindow``); writes are counted in the namespaces the drill names.

- A protected namespace (kube-system; one listed in ``target.protectedNamespaces``) is refused when the drill
  file is loaded: ``drill validate`` and ``drill run`` both exit 2 naming the file, line, field and the fix;
  nothing is asked of the API server.
- What only the cluster can say (a kind whose CRD is not installed, a patch the CRD's schema refuses, a label
  selector that selects nothing or does not parse, an object that does not exist) fails ``drill run``'s
  preflight: exit 2, and the only writes are the target lock's (the Lease ``drill-lock``, taken before the
  policies are expanded and deleted when preflight fails) and, for a refused patch, the refused dry run.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, dynamic
from kubernetes.client.rest import ApiException

from tests.integration.kube import drillkit
from tests.integration.kube.conftest import KubeCluster
from tests.integration.kube.test_kube_least_privilege import (
    LEASE,
    AuditWindow,
    Write,
    by_scope,
    lock_taken_and_freed,
)

pytestmark = pytest.mark.kube

REMEDIATION = "drill.dev/remediation=true"
KINDS = (  # what a drill here may touch: (apiVersion, kind)
    ("apps/v1", "Deployment"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("batch/v1", "CronJob"),
    ("kustomize.toolkit.fluxcd.io/v1", "Kustomization"),
)


def kustomization(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": name, "labels": {"drill.dev/remediation": "true"}},
        "spec": {
            "interval": "5m",
            "path": "./deploy",
            "prune": True,
            "sourceRef": {"kind": "GitRepository", "name": name},
        },
    }


def state(api: client.ApiClient, namespaces: list[str]) -> dict[str, Any]:
    """spec, labels, annotations, uid and generation of every object of ``KINDS`` in ``namespaces``."""
    dyn = dynamic.DynamicClient(api)
    found: dict[str, Any] = {}
    for ns in namespaces:
        for api_version, kind in KINDS:
            for obj in dyn.resources.get(api_version=api_version, kind=kind).get(namespace=ns).to_dict()["items"]:
                meta = obj["metadata"]
                found[f"{ns}/{kind}/{meta['name']}"] = {
                    "spec": obj.get("spec"),
                    "labels": meta.get("labels") or {},
                    "annotations": meta.get("annotations") or {},
                    "uid": meta["uid"],
                    "generation": meta.get("generation"),
                }
    return found


def lease_gone(api: client.ApiClient, ns: str) -> bool:
    try:
        client.CoordinationV1Api(api).read_namespaced_lease(LEASE, ns)
    except ApiException as exc:
        if exc.status == 404:
            return True
        raise
    return False


@dataclass
class Shop:
    """drillkit's app (web, its HPA, a remediation CronJob) and a Flux Kustomization in a fresh namespace."""

    ns: str
    user: str
    kubeconfig: Path
    folder: Path
    run_drill: Callable[..., Any]

    def drill(self, *, policies: list[dict[str, Any]], target: dict[str, Any] | None = None) -> Path:
        spec: dict[str, Any] = {"target": target} if target is not None else {}
        return drillkit.write_drill(self.folder, self.ns, self.kubeconfig, policies=policies, **spec)

    def target(self, **fields: Any) -> dict[str, Any]:
        return {
            "kind": "kubernetes",
            "kubeconfig": str(self.kubeconfig),
            "namespaces": [self.ns],
            "mitigation": {"namespace": self.ns, "deployment": "web", "replicas": 3},
            **fields,
        }


@pytest.fixture
def shop(
    kube_cluster: KubeCluster,
    kube_api: client.ApiClient,
    kube_namespace: str,
    run_drill: Callable[..., Any],
    tmp_path: Path,
) -> Shop:
    ns = kube_namespace
    drillkit.make_app(kube_api, ns)
    client.CustomObjectsApi(kube_api).create_namespaced_custom_object(
        "kustomize.toolkit.fluxcd.io", "v1", ns, "kustomizations", kustomization("shop")
    )
    me = client.AuthenticationV1Api(kube_api).create_self_subject_review(client.V1SelfSubjectReview())
    return Shop(ns, str(me.status.user_info.username), kube_cluster.kubeconfig, tmp_path / "drill", run_drill)


@pytest.fixture
def kube_system_cronjob(kube_api: client.ApiClient) -> Iterator[str]:
    """A remediation-labelled CronJob in kube-system (what a drill there would suspend), deleted afterwards."""
    name = f"drill-test-{uuid.uuid4().hex[:8]}"
    batch = client.BatchV1Api(kube_api)
    batch.create_namespaced_cron_job(
        "kube-system",
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": name, "labels": {"drill.dev/remediation": "true"}},
            "spec": {
                "schedule": "*/5 * * * *",
                "jobTemplate": {
                    "spec": {
                        "template": {
                            "spec": {
                                "restartPolicy": "Never",
                                "containers": [{"name": "r", "image": "registry.invalid/restarter:1"}],
                            }
                        }
                    }
                },
            },
        },
    )
    try:
        yield name
    finally:
        batch.delete_namespaced_cron_job(name, "kube-system")


# -- protected namespaces: refused when the file is loaded ---------------------------------------------------


@pytest.mark.parametrize("where", ["target-namespaces", "policy-namespace", "protected-namespaces"])
def test_protected_namespace_refused_at_load(
    where: str,
    kube_cluster: KubeCluster,
    kube_api: client.ApiClient,
    shop: Shop,
    kube_system_cronjob: str,
) -> None:
    ns = shop.ns
    in_kube_system = {
        "name": "jobs",
        "kind": "cronjob",
        "object": {"namespace": "kube-system", "name": kube_system_cronjob},
    }
    in_shop = {"name": "jobs", "kind": "cronjob", "selector": {"labels": REMEDIATION}}
    if where == "target-namespaces":  # kube-system among the target's namespaces
        drill = shop.drill(policies=[in_kube_system], target=shop.target(namespaces=[ns, "kube-system"]))
        field, refused, fix = "spec.target.namespaces", "kube-system", "list it under allowProtected"
    elif where == "policy-namespace":  # a policy's object in kube-system, the target's namespaces fine
        drill = shop.drill(policies=[in_kube_system])
        field, refused, fix = "spec.policies[0]", "namespace kube-system", "list it under target.allowProtected"
    else:  # the drill's own namespace, listed as protected by the drill file itself
        drill = shop.drill(policies=[in_shop], target=shop.target(protectedNamespaces=[ns]))
        field, refused, fix = "spec.target.namespaces", ns, "list it under allowProtected"
    touched = [ns, "kube-system"]
    before = state(kube_api, touched)
    audit = AuditWindow(kube_cluster, kube_api, shop.user)

    checked = shop.run_drill("validate", str(drill))
    ran = shop.run_drill("run", str(drill), "--plain")

    writes = by_scope(audit.close(ns))
    for done in (checked, ran):
        assert done.returncode == 2, done.stdout + done.stderr
        line = next((x for x in done.stderr.splitlines() if "is protected" in x), "")
        assert line.startswith(f"drill: {drill}:"), done.stderr  # the file (and its line)
        assert f": {field}: " in line, line  # the field
        assert f"{refused} is protected" in line, line
        assert fix in line, line  # the fix
    assert "state: preflight" not in ran.stdout  # refused before a run exists
    assert {n: w for n, w in writes.items() if n in touched} == {}
    assert state(kube_api, touched) == before


# -- what only the cluster can say: refused by preflight -----------------------------------------------------

FLUX = {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "resourceKind": "Kustomization"}
BAD_SELECTION: dict[str, tuple[dict[str, Any], list[str]]] = {
    # a generic policy on a kind no CRD serves
    "unknown-kind": (
        {
            "name": "widgets",
            "kind": "generic",
            "apiVersion": "example.com/v1",
            "resourceKind": "Widget",
            "patch": {"spec": {"paused": True}},
            "selector": {"labels": REMEDIATION},
        },
        ["policy widgets:", "does not serve Widget in example.com/v1", "is its CRD installed?"],
    ),
    # the Flux CRD's schema: spec.suspend is a boolean
    "schema-refuses-type": (
        {
            "name": "flux",
            "kind": "generic",
            **FLUX,
            "patch": {"spec": {"suspend": "yes"}},
            "selector": {"labels": REMEDIATION},
        },
        ["refuses the change (dry run)", "422 Invalid", "spec.suspend", "must be of type boolean"],
    ),
    # the Flux CRD's schema has no spec.paused: a structural schema prunes an unknown field, so the patch would
    # "succeed" and suspend nothing. Preflight must say so (dryRun with fieldValidation=Strict answers
    # 'unknown field "spec.paused"'), not let the run claim the object and then fail to restore it.
    "schema-unknown-field": (
        {
            "name": "flux",
            "kind": "generic",
            **FLUX,
            "patch": {"spec": {"paused": True}},
            "selector": {"labels": REMEDIATION},
        },
        ["flux:", "spec.paused"],
    ),
    "selects-nothing": (
        {"name": "jobs", "kind": "cronjob", "selector": {"labels": "drill.dev/remediation=nope"}},
        ["policy jobs selects no object; nothing to suspend"],
    ),
    "selector-does-not-parse": (
        {"name": "jobs", "kind": "cronjob", "selector": {"labels": "drill.dev/remediation in ("}},
        ["policy jobs:", "400 BadRequest", "unable to parse requirement"],
    ),
    "no-such-object": (
        {"name": "autoscaler", "kind": "hpa", "object": {"namespace": "NAMESPACE", "name": "no-such-hpa"}},
        ["policy autoscaler:", "HorizontalPodAutoscaler NAMESPACE/no-such-hpa not found"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_SELECTION))
def test_bad_selection_fails_preflight_without_a_write(
    case: str, kube_cluster: KubeCluster, kube_api: client.ApiClient, shop: Shop
) -> None:
    ns = shop.ns
    policy, says = BAD_SELECTION[case]
    if "object" in policy:
        policy = {**policy, "object": {**policy["object"], "namespace": ns}}
    drill = shop.drill(policies=[policy])
    valid = shop.run_drill("validate", str(drill))
    assert valid.returncode == 0, valid.stderr  # a well-formed file: only the cluster can say what is wrong
    before = state(kube_api, [ns])
    audit = AuditWindow(kube_cluster, kube_api, shop.user)

    done = shop.run_drill("run", str(drill), "--plain", "--auto-respond", "ack=1s,diagnose=2s,mitigate=3s,resolve=6s")

    writes = by_scope(audit.close(ns)).get(ns, [])
    assert done.returncode == 2, done.stdout + done.stderr
    assert "preflight failed, nothing was changed" in done.stderr
    for text in says:
        assert text.replace("NAMESPACE", ns) in done.stderr, done.stderr
    refused_dry_runs = [w for w in writes if w.dry_run]
    assert [w for w in writes if not w.dry_run] == lock_taken_and_freed(), writes
    if case.startswith("schema-"):
        assert refused_dry_runs == [Write("patch", "kustomizations", "shop", 422, dry_run=True)]
    else:
        assert refused_dry_runs == []
    assert state(kube_api, [ns]) == before
    assert lease_gone(kube_api, ns)
