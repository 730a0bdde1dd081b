"""The example manifests (drills/kubernetes/manifests, examples/remediator) against the real control plane.

The session fixture installed the upstream CRDs (Argo CD, Flux, KEDA, VPA, pinned in
tests/cluster/crds-upstream.env) and the remediator's CRD. Every manifest must pass a server-side dry run
(``dryRun=All``: admission and the CRDs' schemas, nothing stored) as written, and apply for real into a
fresh namespace (namespaces rewritten, cluster-scoped names suffixed, deleted afterwards); the RBAC they
grant is then checked with SubjectAccessReviews: what it must allow, and what it must not.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, dynamic
from kubernetes.client.rest import ApiException

pytestmark = pytest.mark.kube

REPO = Path(__file__).resolve().parents[3]
MANIFESTS = REPO / "drills" / "kubernetes" / "manifests"
REMEDIATOR = REPO / "examples" / "remediator"
FILES = [
    MANIFESTS / "app.yaml",
    MANIFESTS / "rbac.yaml",
    MANIFESTS / "restore-cronjob.yaml",
    REMEDIATOR / "deploy.yaml",
]
FIELD_MANAGER = "drill-tests"
REMEDIATION_LABEL = "drill.dev/remediation"

Obj = dict[str, Any]


def _docs(path: Path) -> list[Obj]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


@pytest.fixture
def dyn(kube_api: client.ApiClient, tmp_path: Path) -> dynamic.DynamicClient:
    return dynamic.DynamicClient(kube_api, cache_file=str(tmp_path / "discovery.json"))


def _apply(dyn: dynamic.DynamicClient, obj: Obj, *, dry_run: bool) -> Obj:
    """Server-side apply (``dryRun=All`` when asked); the object as the API server returns it."""
    res = dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
    meta = obj["metadata"]
    out = res.server_side_apply(
        body=obj,
        name=meta["name"],
        namespace=meta.get("namespace") if res.namespaced else None,
        field_manager=FIELD_MANAGER,
        force_conflicts=True,
        dry_run="All" if dry_run else None,
    )
    return dict(out.to_dict())


def _relocate(dyn: dynamic.DynamicClient, obj: Obj, ns: str, *, suffix: str | None = None) -> Obj:
    """``obj`` moved into namespace ``ns`` if it is namespaced. With ``suffix`` (a real apply), ServiceAccount
    subjects also move to ``ns`` and cluster-scoped objects get ``-<suffix>`` on their name (and a binding on
    its roleRef), so that tests don't collide on them."""
    obj = copy.deepcopy(obj)
    meta = obj["metadata"]
    if dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"]).namespaced:
        meta["namespace"] = ns
    if suffix is None:
        return obj
    for subject in obj.get("subjects") or []:
        if subject.get("kind") == "ServiceAccount":
            subject["namespace"] = ns
    if obj["kind"] in {"ClusterRole", "ClusterRoleBinding"}:
        meta["name"] = f"{meta['name']}-{suffix}"
    if obj["kind"] == "ClusterRoleBinding":
        obj["roleRef"]["name"] = f"{obj['roleRef']['name']}-{suffix}"
    return obj


def _contains(got: Any, want: Any) -> bool:
    """``got`` holds everything ``want`` says (the API server may add defaults, never drop or change)."""
    if isinstance(want, dict):
        return isinstance(got, dict) and all(k in got and _contains(got[k], v) for k, v in want.items())
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(map(_contains, got, want))
    return bool(got == want)


@pytest.fixture
def applied(
    kube_api: client.ApiClient, kube_namespace: str, dyn: dynamic.DynamicClient
) -> Iterator[dict[tuple[str, str], Obj]]:
    """Every manifest object (but the Namespaces) applied for real into the fresh namespace, by (kind, name)."""
    ns = kube_namespace
    out: dict[tuple[str, str], Obj] = {}
    cluster_scoped: list[Obj] = []
    try:
        for path in FILES:
            for doc in _docs(path):
                if doc["kind"] == "Namespace":
                    continue
                obj = _relocate(dyn, doc, ns, suffix=ns)
                if "namespace" not in obj["metadata"]:
                    cluster_scoped.append(obj)
                got = _apply(dyn, obj, dry_run=False)
                assert _contains(got, {k: v for k, v in obj.items() if k != "metadata"}), f"{path.name}: {doc}"
                out[(doc["kind"], doc["metadata"]["name"])] = got
        yield out
    finally:
        for obj in cluster_scoped:
            try:
                dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"]).delete(name=obj["metadata"]["name"])
            except ApiException as exc:
                if exc.status != 404:
                    raise


def test_every_manifest_passes_a_server_side_dry_run_as_written(
    kube_api: client.ApiClient, kube_namespace: str, dyn: dynamic.DynamicClient
) -> None:
    """As written, except that namespaced objects go to the fresh namespace: their namespaces (shop,
    drill-system) don't exist here, and a dry run of the Namespace doesn't create it."""
    kinds: set[str] = set()
    namespaces: set[str] = set()
    for path in FILES:
        for doc in _docs(path):
            if doc["kind"] == "Namespace":
                namespaces.add(doc["metadata"]["name"])
            got = _apply(dyn, _relocate(dyn, doc, kube_namespace), dry_run=True)
            assert (got["kind"], got["metadata"]["name"]) == (doc["kind"], doc["metadata"]["name"])
            kinds.add(f"{doc['apiVersion']}/{doc['kind']}")
    assert namespaces == {"shop", "drill-system"}
    assert {
        "v1/Namespace",
        "apps/v1/Deployment",
        "autoscaling/v2/HorizontalPodAutoscaler",
        "batch/v1/CronJob",
        "keda.sh/v1alpha1/ScaledObject",
        "argoproj.io/v1alpha1/Application",
        "kustomize.toolkit.fluxcd.io/v1/Kustomization",
        "remediation.drill.dev/v1/Remediator",
        "v1/ServiceAccount",
        "rbac.authorization.k8s.io/v1/Role",
        "rbac.authorization.k8s.io/v1/RoleBinding",
        "rbac.authorization.k8s.io/v1/ClusterRole",
        "rbac.authorization.k8s.io/v1/ClusterRoleBinding",
    } == kinds
    # a dry run stores nothing
    assert client.AppsV1Api(kube_api).list_namespaced_deployment(kube_namespace).items == []
    assert (
        client.CustomObjectsApi(kube_api).list_namespaced_custom_object(
            "remediation.drill.dev", "v1", kube_namespace, "remediators"
        )["items"]
        == []
    )


def test_app_objects_apply_and_every_remediation_object_is_labelled(applied: dict[tuple[str, str], Obj]) -> None:
    remediation = {k for k, o in applied.items() if (o["metadata"].get("labels") or {}).get(REMEDIATION_LABEL)}
    assert {
        ("HorizontalPodAutoscaler", "web"),
        ("CronJob", "web-restarter"),
        ("ScaledObject", "web"),
        ("Application", "shop"),
        ("Kustomization", "shop"),
        ("Remediator", "web"),
        ("Deployment", "remediator"),
    } <= remediation
    assert ("Deployment", "web") not in remediation  # the service under drill, not automation

    web = applied[("Deployment", "web")]
    assert web["spec"]["replicas"] == 3
    hpa = applied[("HorizontalPodAutoscaler", "web")]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"], hpa["scaleTargetRef"]["name"]) == (2, 6, "web")
    assert applied[("CronJob", "web-restarter")]["spec"]["schedule"] == "*/5 * * * *"
    assert applied[("ScaledObject", "web")]["spec"]["scaleTargetRef"] == {"name": "web"}
    # the real Argo CD schema kept the automated sync policy (a field unknown to it would be pruned)
    assert applied[("Application", "shop")]["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
    ks = applied[("Kustomization", "shop")]["spec"]
    assert ks.get("suspend") is None and ks["prune"] is True and ks["sourceRef"]["kind"] == "GitRepository"
    assert applied[("Remediator", "web")]["spec"] == {"target": "web", "minReplicas": 3, "suspend": False}
    restorer = applied[("CronJob", "drill-restorer")]["spec"]
    assert restorer["schedule"] == "* * * * *" and restorer["concurrencyPolicy"] == "Forbid"
    container = restorer["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["drill", "restore", "--expired", "--in-cluster"]


def _allowed(
    authz: client.AuthorizationV1Api,
    user: str,
    verb: str,
    group: str,
    resource: str,
    *,
    ns: str | None,
    sub: str = "",
) -> bool:
    # The user alone, no groups: only what is bound to this ServiceAccount itself counts (not, e.g., what
    # system:basic-user grants every authenticated identity).
    review = authz.create_subject_access_review(
        client.V1SubjectAccessReview(
            spec=client.V1SubjectAccessReviewSpec(
                user=user,
                resource_attributes=client.V1ResourceAttributes(
                    verb=verb, group=group, resource=resource, subresource=sub or None, namespace=ns
                ),
            )
        )
    )
    return bool(review.status.allowed)


REMEDIATION_RESOURCES = [
    ("autoscaling", "horizontalpodautoscalers"),
    ("apps", "deployments"),
    ("batch", "cronjobs"),
    ("keda.sh", "scaledobjects"),
    ("argoproj.io", "applications"),
    ("kustomize.toolkit.fluxcd.io", "kustomizations"),
    ("remediation.drill.dev", "remediators"),
]


def test_drill_service_account_gets_exactly_what_a_drill_run_needs(
    applied: dict[tuple[str, str], Obj], kube_api: client.ApiClient, kube_namespace: str
) -> None:
    authz = client.AuthorizationV1Api(kube_api)
    ns = kube_namespace
    sa = f"system:serviceaccount:{ns}:drill"

    def can(verb: str, group: str, resource: str, namespace: str | None = ns, sub: str = "") -> bool:
        return _allowed(authz, sa, verb, group, resource, ns=namespace, sub=sub)

    for group, resource in REMEDIATION_RESOURCES:
        if resource == "deployments":
            continue  # web is the experiment's, not a policy of app.yaml: below
        for verb in ("get", "list", "patch"):
            assert can(verb, group, resource), f"drill cannot {verb} {resource}"
        for verb in ("create", "update", "delete", "watch"):
            assert not can(verb, group, resource), f"drill may {verb} {resource}"
        assert not can("patch", group, resource, namespace="default"), f"drill may patch {resource} outside {ns}"
    # The experiment's fault, rollback and the responder's mitigation patch web; its steady-state probe watches it.
    assert can("patch", "apps", "deployments") and can("watch", "apps", "deployments")
    for verb in ("get", "list", "create", "update", "delete"):
        assert not can(verb, "apps", "deployments"), f"drill may {verb} deployments"
    assert not can("patch", "apps", "deployments", sub="scale")
    for verb in ("get", "create", "update", "delete"):
        assert can(verb, "coordination.k8s.io", "leases")
    assert not can("patch", "coordination.k8s.io", "leases")
    for verb in ("get", "list", "delete", "create"):
        assert not can(verb, "", "pods"), f"drill may {verb} pods"
    assert not can("get", "", "secrets")
    assert not can("patch", "autoscaling.k8s.io", "verticalpodautoscalers")  # not in app.yaml: not granted
    assert can("create", "authorization.k8s.io", "selfsubjectaccessreviews", namespace=None)
    default_sa = f"system:serviceaccount:{ns}:default"  # the same question for an identity without rbac.yaml
    assert not _allowed(authz, default_sa, "create", "authorization.k8s.io", "selfsubjectaccessreviews", ns=None)
    assert not _allowed(authz, default_sa, "get", "apps", "deployments", ns=ns)


def test_restorer_service_account_can_restore_cluster_wide_and_nothing_else(
    applied: dict[tuple[str, str], Obj], kube_api: client.ApiClient, kube_namespace: str
) -> None:
    authz = client.AuthorizationV1Api(kube_api)
    sa = f"system:serviceaccount:{kube_namespace}:drill-restorer"
    for group, resource in REMEDIATION_RESOURCES:
        for namespace in ("default", "some-other-namespace"):
            for verb in ("get", "list", "patch"):
                assert _allowed(authz, sa, verb, group, resource, ns=namespace), f"restorer cannot {verb} {resource}"
        for verb in ("create", "delete", "update"):
            assert not _allowed(authz, sa, verb, group, resource, ns="default"), f"restorer may {verb} {resource}"
    assert _allowed(authz, sa, "list", "apps", "deployments", ns=None)  # all namespaces at once
    assert not _allowed(authz, sa, "patch", "apps", "deployments", ns="default", sub="scale")
    assert not _allowed(authz, sa, "delete", "", "pods", ns="default")
    assert not _allowed(authz, sa, "get", "", "secrets", ns="default")
    assert not _allowed(authz, sa, "create", "coordination.k8s.io", "leases", ns="default")


def test_remediator_service_account_can_run_the_operator(
    applied: dict[tuple[str, str], Obj], kube_api: client.ApiClient, kube_namespace: str
) -> None:
    authz = client.AuthorizationV1Api(kube_api)
    ns = kube_namespace
    sa = f"system:serviceaccount:{ns}:remediator"
    for verb in ("get", "list", "watch", "patch"):
        assert _allowed(authz, sa, verb, "apps", "deployments", ns=ns)
    for verb in ("get", "list", "watch"):
        assert _allowed(authz, sa, verb, "remediation.drill.dev", "remediators", ns=ns)
    assert not _allowed(authz, sa, "patch", "remediation.drill.dev", "remediators", ns=ns)
    assert _allowed(authz, sa, "create", "events.k8s.io", "events", ns=ns)
    assert not _allowed(authz, sa, "patch", "apps", "deployments", ns="default")
    dep = applied[("Deployment", "remediator")]["spec"]["template"]["spec"]
    assert dep["serviceAccountName"] == "remediator"
    assert dep["containers"][0]["env"][0]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"


# -- the upstream CRDs: realistic objects accepted, invalid ones refused by their real schemas -----------------

REALISTIC: dict[str, Obj] = {
    "argocd-application": {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "guestbook"},
        "spec": {
            "project": "default",
            "source": {
                "repoURL": "https://github.com/argoproj/argocd-example-apps.git",
                "targetRevision": "HEAD",
                "path": "guestbook",
                "kustomize": {"namePrefix": "prod-"},
            },
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "guestbook"},
            "syncPolicy": {
                # Argo CD 3.x: automated sync switched off while keeping its settings
                "automated": {"enabled": False, "prune": True, "selfHeal": True, "allowEmpty": False},
                "syncOptions": ["CreateNamespace=true", "ServerSideApply=true"],
                "retry": {"limit": 5, "backoff": {"duration": "5s", "factor": 2, "maxDuration": "3m"}},
            },
            "revisionHistoryLimit": 10,
        },
    },
    "flux-kustomization": {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": "apps"},
        "spec": {
            "interval": "10m0s",
            "retryInterval": "1m",
            "timeout": "5m",
            "path": "./apps/production",
            "prune": True,
            "wait": True,
            "sourceRef": {"kind": "GitRepository", "name": "flux-system", "namespace": "flux-system"},
            "healthChecks": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "namespace": "shop"}],
            "patches": [
                {"patch": "- op: replace\n  path: /spec/replicas\n  value: 3", "target": {"kind": "Deployment"}}
            ],
        },
    },
    "flux-helmrelease": {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": "podinfo"},
        "spec": {
            "interval": "10m",
            "timeout": "5m",
            "chart": {
                "spec": {
                    "chart": "podinfo",
                    "version": "6.x",
                    "sourceRef": {"kind": "HelmRepository", "name": "podinfo"},
                    "interval": "1h",
                }
            },
            "releaseName": "podinfo",
            "install": {"remediation": {"retries": 3}},
            "upgrade": {"remediation": {"retries": 3, "remediateLastFailure": True}, "cleanupOnFail": True},
            "values": {"replicaCount": 2, "resources": {"requests": {"cpu": "100m"}}},
        },
    },
    "keda-scaledobject": {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "worker", "annotations": {"autoscaling.keda.sh/paused": "true"}},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "worker"},
            "pollingInterval": 30,
            "cooldownPeriod": 300,
            "minReplicaCount": 1,
            "maxReplicaCount": 20,
            "advanced": {
                "horizontalPodAutoscalerConfig": {
                    "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}},
                },
            },
            "triggers": [
                {
                    "type": "prometheus",
                    "metadata": {
                        "serverAddress": "http://prometheus.monitoring.svc:9090",
                        "query": "sum(rate(http_requests_total{app='worker'}[2m]))",
                        "threshold": "100",
                    },
                },
                {"type": "cpu", "metricType": "Utilization", "metadata": {"value": "60"}},
            ],
        },
    },
    "vpa": {
        "apiVersion": "autoscaling.k8s.io/v1",
        "kind": "VerticalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "updatePolicy": {"updateMode": "Recreate", "minReplicas": 2},
            "resourcePolicy": {
                "containerPolicies": [
                    {
                        "containerName": "*",
                        "minAllowed": {"cpu": "50m", "memory": "64Mi"},
                        "maxAllowed": {"cpu": "2", "memory": "2Gi"},
                        "controlledResources": ["cpu", "memory"],
                    }
                ]
            },
        },
    },
}

# One change each that the real schema refuses (the old minimal CRDs accepted most of these).
INVALID: dict[str, tuple[Callable[[Obj], None], str]] = {
    "argocd-application": (lambda o: o["spec"].pop("destination"), "destination"),
    "flux-kustomization": (lambda o: o["spec"].update(interval="every ten minutes"), "interval"),
    "flux-helmrelease": (lambda o: o["spec"].pop("chart"), "either chart or chartRef must be set"),
    "keda-scaledobject": (lambda o: o["spec"].pop("triggers"), "triggers"),
    "vpa": (lambda o: o["spec"]["updatePolicy"].update(updateMode="Sometimes"), "updateMode"),
}


@pytest.mark.parametrize("name", sorted(REALISTIC))
def test_upstream_crd_accepts_a_realistic_object_and_enforces_its_schema(
    name: str, kube_namespace: str, dyn: dynamic.DynamicClient
) -> None:
    obj = copy.deepcopy(REALISTIC[name])
    obj["metadata"]["namespace"] = kube_namespace
    created = _apply(dyn, obj, dry_run=False)
    # nothing the object says was pruned by the structural schema (defaults may be added)
    for key, value in obj["spec"].items():
        assert _contains(created["spec"].get(key), value), f"{name}: spec.{key} is {created['spec'].get(key)!r}"

    bad = copy.deepcopy(obj)
    bad["metadata"]["name"] += "-invalid"
    mutate, mentioned = INVALID[name]
    mutate(bad)
    with pytest.raises(ApiException) as exc:
        _apply(dyn, bad, dry_run=True)
    assert exc.value.status == 422, exc.value.body
    assert mentioned in str(exc.value.body)


def test_argocd_application_crd_has_automated_enabled(kube_api: client.ApiClient) -> None:
    """The Argo CD 3.x field the argocd-application policy uses when an Application already has it."""
    crd = client.ApiextensionsV1Api(kube_api).read_custom_resource_definition(
        "applications.argoproj.io", _preload_content=False
    )
    schema = yaml.safe_load(crd.data)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    automated = schema["properties"]["spec"]["properties"]["syncPolicy"]["properties"]["automated"]
    assert automated["properties"]["enabled"]["type"] == "boolean"
