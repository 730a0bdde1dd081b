"""Patch semantics, optimistic concurrency and CRD validation against the real kube-apiserver.

Every object drills touch (HPA, CronJob, Lease, and the Argo CD / Flux / KEDA custom resources) is
created, merge-patched and JSON-patched, and a write carrying a stale resourceVersion gets 409.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.integration.kube.conftest import deployment

pytestmark = pytest.mark.kube

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"


@dataclass(frozen=True)
class Case:
    group: str
    version: str
    plural: str
    kind: str
    spec: dict[str, Any]
    merge_patch: dict[str, Any]
    json_patch: list[dict[str, Any]]
    custom: bool  # a CRD (no strategic merge patch)

    def manifest(self, name: str) -> dict[str, Any]:
        return {
            "apiVersion": f"{self.group}/{self.version}",
            "kind": self.kind,
            "metadata": {"name": name, "labels": {"drill-test": "patch"}},
            "spec": copy.deepcopy(self.spec),
        }


def _get(obj: dict[str, Any], path: str) -> Any:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


CASES = {
    "hpa": Case(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 1,
            "maxReplicas": 5,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
                }
            ],
        },
        {"spec": {"minReplicas": 5}},  # freeze the autoscaler: min == max
        [{"op": "replace", "path": "/spec/maxReplicas", "value": 8}],
        custom=False,
    ),
    "cronjob": Case(
        "batch",
        "v1",
        "cronjobs",
        "CronJob",
        {
            "schedule": "*/5 * * * *",
            "jobTemplate": {
                "spec": {
                    "template": {
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [{"name": "job", "image": "registry.invalid/job:1"}],
                        }
                    }
                }
            },
        },
        {"spec": {"suspend": True}},
        [{"op": "replace", "path": "/spec/schedule", "value": "0 3 * * *"}],
        custom=False,
    ),
    "lease": Case(
        "coordination.k8s.io",
        "v1",
        "leases",
        "Lease",
        {"holderIdentity": "controller-a", "leaseDurationSeconds": 15},
        {"spec": {"holderIdentity": "drill"}},
        [{"op": "replace", "path": "/spec/leaseDurationSeconds", "value": 60}],
        custom=False,
    ),
    "argocd-application": Case(
        "argoproj.io",
        "v1alpha1",
        "applications",
        "Application",
        {
            "project": "default",
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "shop"},
            "source": {
                "repoURL": "https://git.example.invalid/shop.git",
                "path": "deploy",
                "targetRevision": "HEAD",
            },
            "syncPolicy": {"automated": {"prune": True, "selfHeal": True}},
        },
        {"spec": {"syncPolicy": {"automated": {"selfHeal": False}}}},  # deep merge keeps prune
        [{"op": "remove", "path": "/spec/syncPolicy/automated"}],
        custom=True,
    ),
    "flux-kustomization": Case(
        "kustomize.toolkit.fluxcd.io",
        "v1",
        "kustomizations",
        "Kustomization",
        {
            "interval": "10m",
            "path": "./deploy",
            "prune": True,
            "sourceRef": {"kind": "GitRepository", "name": "shop"},
        },
        {"spec": {"suspend": True}},
        [{"op": "replace", "path": "/spec/suspend", "value": False}],
        custom=True,
    ),
    "flux-helmrelease": Case(
        "helm.toolkit.fluxcd.io",
        "v2",
        "helmreleases",
        "HelmRelease",
        {
            "interval": "5m",
            "chart": {"spec": {"chart": "shop", "sourceRef": {"kind": "HelmRepository", "name": "charts"}}},
            "values": {"replicaCount": 2},
        },
        {"spec": {"suspend": True}},
        [{"op": "replace", "path": "/spec/suspend", "value": False}],
        custom=True,
    ),
    "keda-scaledobject": Case(
        "keda.sh",
        "v1alpha1",
        "scaledobjects",
        "ScaledObject",
        {
            "scaleTargetRef": {"name": "web"},
            "minReplicaCount": 1,
            "maxReplicaCount": 10,
            "triggers": [{"type": "cpu", "metadata": {"type": "Utilization", "value": "60"}}],
        },
        {"metadata": {"annotations": {"autoscaling.keda.sh/paused": "true"}}},
        # "/" inside a key is escaped as "~1" in a JSON pointer
        [{"op": "remove", "path": "/metadata/annotations/autoscaling.keda.sh~1paused"}],
        custom=True,
    ),
}

# What each patch must have done: (dotted path, value) after the merge patch, then after the JSON patch.
EXPECT = {
    "hpa": (
        [("spec.minReplicas", 5), ("spec.maxReplicas", 5)],
        [("spec.minReplicas", 5), ("spec.maxReplicas", 8)],
    ),
    "cronjob": ([("spec.suspend", True)], [("spec.suspend", True), ("spec.schedule", "0 3 * * *")]),
    "lease": (
        [("spec.holderIdentity", "drill"), ("spec.leaseDurationSeconds", 15)],
        [("spec.holderIdentity", "drill"), ("spec.leaseDurationSeconds", 60)],
    ),
    "argocd-application": (
        [("spec.syncPolicy.automated.selfHeal", False), ("spec.syncPolicy.automated.prune", True)],
        [("spec.syncPolicy.automated", None), ("spec.project", "default")],
    ),
    "flux-kustomization": ([("spec.suspend", True)], [("spec.suspend", False), ("spec.prune", True)]),
    "flux-helmrelease": (
        [("spec.suspend", True)],
        [("spec.suspend", False), ("spec.values.replicaCount", 2)],
    ),
    "keda-scaledobject": (
        [("metadata.annotations", {"autoscaling.keda.sh/paused": "true"})],
        [("metadata.annotations", None), ("spec.maxReplicaCount", 10)],
    ),
}


def _status(exc: pytest.ExceptionInfo[ApiException]) -> int:
    return int(exc.value.status)


@pytest.mark.parametrize("key", list(CASES))
def test_merge_and_json_patch_and_stale_resource_version(
    key: str, kube_api: client.ApiClient, kube_namespace: str
) -> None:
    case = CASES[key]
    api = client.CustomObjectsApi(kube_api)
    ns, name = kube_namespace, f"{key}-1"
    args = (case.group, case.version, ns, case.plural)

    created = api.create_namespaced_custom_object(*args, case.manifest(name))
    rv_created = created["metadata"]["resourceVersion"]

    after_merge = api.patch_namespaced_custom_object(*args, name, case.merge_patch, _content_type=MERGE)
    for path, value in EXPECT[key][0]:
        assert _get(after_merge, path) == value, f"after merge patch: {path}"
    assert after_merge["metadata"]["resourceVersion"] != rv_created

    after_json = api.patch_namespaced_custom_object(*args, name, case.json_patch, _content_type=JSON_PATCH)
    for path, value in EXPECT[key][1]:
        assert _get(after_json, path) == value, f"after JSON patch: {path}"

    # The server is the source of truth: a fresh read shows the same. (Controllers, e.g. the HPA
    # controller writing status, may have bumped the resourceVersion in between.)
    current = api.get_namespaced_custom_object(*args, name)
    for path, value in EXPECT[key][1]:
        assert _get(current, path) == value, f"fresh read: {path}"

    # Optimistic concurrency: an update based on a stale read is refused with 409 Conflict ...
    stale = copy.deepcopy(current)
    stale["metadata"]["resourceVersion"] = rv_created
    stale["metadata"].setdefault("labels", {})["drill-test"] = "stale-put"
    with pytest.raises(ApiException) as put_err:
        api.replace_namespaced_custom_object(*args, name, stale)
    assert _status(put_err) == 409, put_err.value.body
    # ... and so is a merge patch that carries the stale resourceVersion as a precondition.
    with pytest.raises(ApiException) as patch_err:
        api.patch_namespaced_custom_object(
            *args,
            name,
            {"metadata": {"resourceVersion": rv_created, "labels": {"drill-test": "stale-patch"}}},
            _content_type=MERGE,
        )
    assert _status(patch_err) == 409, patch_err.value.body
    # A JSON patch whose "test" op guards on the stale resourceVersion fails and changes nothing.
    with pytest.raises(ApiException) as test_err:
        api.patch_namespaced_custom_object(
            *args,
            name,
            [
                {"op": "test", "path": "/metadata/resourceVersion", "value": rv_created},
                {"op": "replace", "path": "/metadata/labels/drill-test", "value": "stale-json"},
            ],
            _content_type=JSON_PATCH,
        )
    assert _status(test_err) == 422, test_err.value.body
    assert api.get_namespaced_custom_object(*args, name)["metadata"]["labels"]["drill-test"] == "patch"

    # Read-modify-write with the current resourceVersion goes through (retried on a conflict with a
    # controller's concurrent status write, as a careful client does).
    for _attempt in range(5):
        fresh = api.get_namespaced_custom_object(*args, name)
        fresh["metadata"]["labels"]["drill-test"] = "fresh-put"
        try:
            replaced = api.replace_namespaced_custom_object(*args, name, fresh)
            break
        except ApiException as exc:
            if exc.status != 409:
                raise
    else:
        pytest.fail("read-modify-write kept conflicting")
    assert replaced["metadata"]["labels"]["drill-test"] == "fresh-put"

    if case.custom:
        # Custom resources do not support strategic merge patch: 415 Unsupported Media Type.
        with pytest.raises(ApiException) as smp_err:
            api.patch_namespaced_custom_object(*args, name, case.merge_patch, _content_type=STRATEGIC)
        assert _status(smp_err) == 415, smp_err.value.body


@pytest.mark.parametrize(
    ("key", "bad_spec_patch"),
    [
        ("flux-kustomization", {"suspend": "yes"}),  # not a boolean
        ("flux-helmrelease", {"interval": "every five minutes"}),  # not a duration
        ("keda-scaledobject", {"maxReplicaCount": "ten"}),  # not an integer
        ("argocd-application", {"syncPolicy": {"automated": {"selfHeal": "on"}}}),  # not a boolean
    ],
)
def test_crd_schema_validation_rejects_bad_patch(
    key: str, bad_spec_patch: dict[str, Any], kube_api: client.ApiClient, kube_namespace: str
) -> None:
    case = CASES[key]
    api = client.CustomObjectsApi(kube_api)
    args = (case.group, case.version, kube_namespace, case.plural)
    api.create_namespaced_custom_object(*args, case.manifest("valid"))
    with pytest.raises(ApiException) as err:
        api.patch_namespaced_custom_object(*args, "valid", {"spec": bad_spec_patch}, _content_type=MERGE)
    assert _status(err) == 422, err.value.body
    # a required field missing on create is refused too
    manifest = case.manifest("invalid")
    required = {
        "flux-kustomization": "sourceRef",
        "flux-helmrelease": "interval",
        "keda-scaledobject": "scaleTargetRef",
        "argocd-application": "project",
    }[key]
    del manifest["spec"][required]
    with pytest.raises(ApiException) as create_err:
        api.create_namespaced_custom_object(*args, manifest)
    assert _status(create_err) == 422, create_err.value.body


def test_typed_clients_strategic_vs_merge_patch_on_deployment(kube_api: client.ApiClient, kube_namespace: str) -> None:
    """Strategic merge merges the containers list by name; a JSON merge patch replaces the whole list."""
    apps = client.AppsV1Api(kube_api)
    containers = [
        client.V1Container(name="app", image="registry.invalid/app:1"),
        client.V1Container(name="sidecar", image="registry.invalid/sidecar:1"),
    ]
    apps.create_namespaced_deployment(kube_namespace, deployment("two", 0, containers=containers))
    one_container = {
        "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "registry.invalid/app:2"}]}}}
    }

    smp = apps.patch_namespaced_deployment("two", kube_namespace, one_container, _content_type=STRATEGIC)
    assert [(c.name, c.image) for c in smp.spec.template.spec.containers] == [
        ("app", "registry.invalid/app:2"),
        ("sidecar", "registry.invalid/sidecar:1"),
    ]
    merge = apps.patch_namespaced_deployment("two", kube_namespace, one_container, _content_type=MERGE)
    assert [(c.name, c.image) for c in merge.spec.template.spec.containers] == [("app", "registry.invalid/app:2")]

    # typed Lease and CronJob APIs see the same optimistic concurrency
    coord = client.CoordinationV1Api(kube_api)
    lease = coord.create_namespaced_lease(
        kube_namespace,
        client.V1Lease(metadata=client.V1ObjectMeta(name="leader"), spec=client.V1LeaseSpec(holder_identity="a")),
    )
    coord.patch_namespaced_lease("leader", kube_namespace, {"spec": {"holderIdentity": "b"}}, _content_type=MERGE)
    lease.spec.holder_identity = "c"
    with pytest.raises(ApiException) as err:
        coord.replace_namespaced_lease("leader", kube_namespace, lease)
    assert _status(err) == 409
    assert coord.read_namespaced_lease("leader", kube_namespace).spec.holder_identity == "b"
