"""The Kubernetes suspender of every policy kind against the real kube-apiserver.

Each case is a realistic object of one policy kind. Claim + suspend is exactly one write (checked in the audit
log); the restore puts back exactly what the server showed before the claim (spec, annotations and labels, deep
equality), never recreates a deleted object, never touches a replaced one, keeps changes to other fields, refuses
to overwrite a change to a touched field unless forced, and a claim racing another writer retries.
"""

from __future__ import annotations

import copy
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException
from kubernetes.dynamic import DynamicClient

from orchestrator import errors
from orchestrator.adapters import kube
from orchestrator.policies import base
from orchestrator.policies import kubernetes as kp

if TYPE_CHECKING:
    from .conftest import KubeCluster

pytestmark = pytest.mark.kube

ADMIN = "drill-admin"
AUDIT_TIMEOUT_S = 30
READY_TIMEOUT_S = 60
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"

WIDGET_GROUP = "suspenders.drill.test"
WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"widgets.{WIDGET_GROUP}", "labels": {"app.kubernetes.io/part-of": "drill-test-crds"}},
    "spec": {
        "group": WIDGET_GROUP,
        "names": {"kind": "Widget", "listKind": "WidgetList", "plural": "widgets", "singular": "widget"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {
                                    "mode": {"type": "string", "default": "auto"},
                                    # defaults inside an object apply whenever the object exists: removing
                                    # only the touched leaf brings its default back
                                    "autoscale": {
                                        "type": "object",
                                        "properties": {
                                            "enabled": {"type": "boolean", "default": True},
                                            "interval": {"type": "string", "default": "30s"},
                                        },
                                    },
                                },
                            }
                        },
                    }
                },
            }
        ],
    },
}

# Used only when the cluster has no VerticalPodAutoscaler CRD (the session installs the upstream one).
VPA_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {
        "name": "verticalpodautoscalers.autoscaling.k8s.io",
        "labels": {"app.kubernetes.io/part-of": "drill-test-crds"},
    },
    "spec": {
        "group": "autoscaling.k8s.io",
        "names": {
            "kind": "VerticalPodAutoscaler",
            "listKind": "VerticalPodAutoscalerList",
            "plural": "verticalpodautoscalers",
            "singular": "verticalpodautoscaler",
            "shortNames": ["vpa"],
        },
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["targetRef"],
                                "x-kubernetes-preserve-unknown-fields": True,
                                "properties": {
                                    "targetRef": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                                    "updatePolicy": {
                                        "type": "object",
                                        "properties": {
                                            "updateMode": {
                                                "type": "string",
                                                "enum": ["Off", "Initial", "Recreate", "InPlaceOrRecreate", "Auto"],
                                            }
                                        },
                                    },
                                },
                            },
                            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                        },
                    }
                },
            }
        ],
    },
}

# -- the cases -------------------------------------------------------------------------------------------

_HPA_SPEC: dict[str, Any] = {
    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
    "minReplicas": 2,
    "maxReplicas": 6,
    "metrics": [
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}
    ],
}


def _pod_template(app: str) -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": app}},
        "spec": {
            "containers": [{"name": "app", "image": f"registry.invalid/{app}:1"}],
            "terminationGracePeriodSeconds": 5,
        },
    }


def _revision_annotated(obj: dict[str, Any]) -> bool:
    """The deployment controller annotates its revision right after creation: snapshot after that."""
    return "deployment.kubernetes.io/revision" in (obj["metadata"].get("annotations") or {})


@dataclass(frozen=True)
class Case:
    id: str
    policy_kind: str
    api_version: str
    kind: str
    body: dict[str, Any]  # everything but metadata.name/namespace
    other: dict[str, Any]  # a merge patch of a field the policy does not touch
    same: dict[str, Any]  # a merge patch moving a touched field away from its suspended value
    same_text: str  # how the restore conflict names that change
    patch: dict[str, Any] | None = None
    ready: Callable[[dict[str, Any]], bool] | None = None
    labels: dict[str, str] = field(default_factory=lambda: {"app.kubernetes.io/name": "shop", "tier": "web"})

    def manifest(self, ns: str, name: str) -> dict[str, Any]:
        body = copy.deepcopy(self.body)
        body.update({"apiVersion": self.api_version, "kind": self.kind})
        body["metadata"] = {
            "name": name,
            "namespace": ns,
            "labels": dict(self.labels),
            "annotations": {"team": "payments"},
        }
        return body


CASES = [
    Case(
        "hpa-with-behavior",
        "hpa",
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
        {
            "spec": {
                **_HPA_SPEC,
                "behavior": {
                    "scaleDown": {
                        "stabilizationWindowSeconds": 120,
                        "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}],
                    }
                },
            }
        },
        other={"spec": {"maxReplicas": 9}},
        same={"spec": {"behavior": {"scaleUp": {"selectPolicy": "Min"}}}},
        same_text="spec.behavior.scaleUp.selectPolicy was set to Disabled and now holds Min",
    ),
    Case(
        "hpa-without-behavior",
        "hpa",
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
        {"spec": copy.deepcopy(_HPA_SPEC)},
        other={"spec": {"maxReplicas": 9}},
        same={"spec": {"behavior": {"scaleDown": {"selectPolicy": "Max"}}}},
        same_text="spec.behavior.scaleDown.selectPolicy was set to Disabled and now holds Max",
    ),
    Case(
        "deployment",
        "deployment",
        "apps/v1",
        "Deployment",
        {"spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": _pod_template("web")}},
        other={"spec": {"minReadySeconds": 7}},
        same={"spec": {"replicas": 2}},
        same_text="spec.replicas was set to 0 and now holds 2",
        ready=_revision_annotated,
    ),
    Case(
        "statefulset",
        "statefulset",
        "apps/v1",
        "StatefulSet",
        {
            "spec": {
                "serviceName": "db",
                "replicas": 2,
                "selector": {"matchLabels": {"app": "db"}},
                "template": _pod_template("db"),
            }
        },
        other={"spec": {"minReadySeconds": 7}},
        same={"spec": {"replicas": 1}},
        same_text="spec.replicas was set to 0 and now holds 1",
    ),
    Case(
        "cronjob",
        "cronjob",
        "batch/v1",
        "CronJob",
        {
            "spec": {
                "schedule": "0 3 * * *",
                "suspend": False,
                "jobTemplate": {
                    "spec": {
                        "template": {
                            "spec": {
                                "restartPolicy": "Never",
                                "containers": [{"name": "job", "image": "registry.invalid/reindex:1"}],
                            }
                        }
                    }
                },
            }
        },
        other={"spec": {"schedule": "30 4 * * *"}},
        same={"spec": {"suspend": False}},
        same_text="spec.suspend was set to true and now holds false",
    ),
    Case(
        "keda-scaledobject",
        "keda-scaledobject",
        "keda.sh/v1alpha1",
        "ScaledObject",
        {
            "spec": {
                "scaleTargetRef": {"name": "web"},
                "minReplicaCount": 1,
                "maxReplicaCount": 10,
                "triggers": [{"type": "cpu", "metricType": "Utilization", "metadata": {"value": "60"}}],
            }
        },
        other={"spec": {"maxReplicaCount": 20}},
        same={"metadata": {"annotations": {"autoscaling.keda.sh/paused": "false"}}},
        same_text="metadata.annotations[autoscaling.keda.sh/paused] was set to true and now holds false",
    ),
    Case(
        "argocd-automated",
        "argocd-application",
        "argoproj.io/v1alpha1",
        "Application",
        {
            "spec": {
                "project": "default",
                "destination": {"server": "https://kubernetes.default.svc", "namespace": "shop"},
                "source": {
                    "repoURL": "https://git.example.invalid/shop.git",
                    "path": "deploy",
                    "targetRevision": "HEAD",
                },
                "syncPolicy": {"automated": {"prune": True, "selfHeal": True}, "syncOptions": ["CreateNamespace=true"]},
            }
        },
        other={"spec": {"source": {"targetRevision": "v2"}}},
        same={"spec": {"syncPolicy": {"automated": {"prune": True}}}},
        same_text='spec.syncPolicy.automated was removed and now holds {"prune":true}',
    ),
    Case(
        "argocd-automated-enabled",
        "argocd-application",
        "argoproj.io/v1alpha1",
        "Application",
        {
            "spec": {
                "project": "default",
                "destination": {"server": "https://kubernetes.default.svc", "namespace": "shop"},
                "source": {
                    "repoURL": "https://git.example.invalid/shop.git",
                    "path": "deploy",
                    "targetRevision": "HEAD",
                },
                "syncPolicy": {"automated": {"enabled": True, "prune": True, "selfHeal": True}},
            }
        },
        other={"spec": {"source": {"targetRevision": "v2"}}},
        same={"spec": {"syncPolicy": {"automated": {"enabled": True}}}},
        same_text="spec.syncPolicy.automated.enabled was set to false and now holds true",
    ),
    Case(
        "flux-kustomization",
        "flux",
        "kustomize.toolkit.fluxcd.io/v1",
        "Kustomization",
        {
            "spec": {
                "interval": "10m",
                "path": "./deploy",
                "prune": True,
                "sourceRef": {"kind": "GitRepository", "name": "shop"},
            }
        },
        other={"spec": {"interval": "15m"}},
        same={"spec": {"suspend": False}},
        same_text="spec.suspend was set to true and now holds false",
    ),
    Case(
        "flux-helmrelease",
        "flux",
        "helm.toolkit.fluxcd.io/v2",
        "HelmRelease",
        {
            "spec": {
                "interval": "5m",
                "suspend": False,
                "chart": {"spec": {"chart": "shop", "sourceRef": {"kind": "HelmRepository", "name": "charts"}}},
                "values": {"replicaCount": 2},
            }
        },
        other={"spec": {"values": {"replicaCount": 4}}},
        same={"spec": {"suspend": False}},
        same_text="spec.suspend was set to true and now holds false",
    ),
    Case(
        "vpa",
        "vpa",
        "autoscaling.k8s.io/v1",
        "VerticalPodAutoscaler",
        {
            "spec": {
                "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "updatePolicy": {"updateMode": "Recreate"},
            }
        },
        other={"spec": {"targetRef": {"name": "web-v2"}}},
        same={"spec": {"updatePolicy": {"updateMode": "Initial"}}},
        same_text="spec.updatePolicy.updateMode was set to Off and now holds Initial",
    ),
    Case(
        "generic-configmap",
        "generic",
        "v1",
        "ConfigMap",
        {"data": {"mode": "auto", "threshold": "5"}},
        other={"data": {"threshold": "9"}},
        same={"data": {"mode": "semi"}},
        same_text="data.mode was set to manual and now holds semi",
        patch={"data": {"mode": "manual"}},
    ),
    Case(
        "generic-crd-defaults",
        "generic",
        f"{WIDGET_GROUP}/v1",
        "Widget",
        {"spec": {"mode": "scheduled"}},
        other={"spec": {"mode": "manual"}},
        same={"spec": {"autoscale": {"enabled": True}}},
        same_text="spec.autoscale.enabled was set to false and now holds true",
        patch={"spec": {"autoscale": {"enabled": False}}},
    ),
]


# -- fixtures and helpers ----------------------------------------------------------------------------------


def _ensure_crd(api: client.ApiClient, body: dict[str, Any], wait: Callable[..., Any], *, replace: bool) -> None:
    """Create the CRD; when it exists, replace it (``replace``) or leave it as it is."""
    ext = client.ApiextensionsV1Api(api)
    name = body["metadata"]["name"]
    try:
        ext.create_custom_resource_definition(copy.deepcopy(body), _preload_content=False)
    except ApiException as exc:
        if exc.status != 409:
            raise
        if replace:
            current = ext.read_custom_resource_definition(name)
            updated = copy.deepcopy(body)
            updated["metadata"]["resourceVersion"] = current.metadata.resource_version
            ext.replace_custom_resource_definition(name, updated, _preload_content=False)

    def established() -> bool:
        conds = ext.read_custom_resource_definition(name).status.conditions or []
        return any(c.type == "Established" and c.status == "True" for c in conds)

    wait(established, timeout=30, what=f"CRD {name} Established")


@pytest.fixture(scope="session")
def suspender_crds(kube_cluster: KubeCluster) -> None:
    from .conftest import wait_until

    with kube_cluster.api_client() as api:
        _ensure_crd(api, WIDGET_CRD, wait_until, replace=True)
        names = {c.metadata.name for c in client.ApiextensionsV1Api(api).list_custom_resource_definition().items}
        if VPA_CRD["metadata"]["name"] not in names:
            _ensure_crd(api, VPA_CRD, wait_until, replace=False)


@pytest.fixture(scope="session")
def kapi(kube_cluster: KubeCluster, suspender_crds: None) -> Iterator[kube.KubeApi]:
    api = kube.KubeConfigRef(str(kube_cluster.kubeconfig), None).load()
    try:
        yield api
    finally:
        api.close()


@pytest.fixture(scope="session")
def dyn(kube_cluster: KubeCluster, suspender_crds: None) -> Iterator[DynamicClient]:
    with kube_cluster.api_client() as api:
        yield DynamicClient(api)


def _marker(run_id: str = "run-1") -> base.Marker:
    return base.Marker(run_id=run_id, policy="ignored", kind="ignored", original={}, deadline_at=2e9)


def _comparable(obj: dict[str, Any]) -> dict[str, Any]:
    """What a restore must give back exactly: everything but status and server-managed metadata."""
    out = {k: copy.deepcopy(v) for k, v in obj.items() if k not in ("status", "metadata")}
    meta = obj.get("metadata") or {}
    out["annotations"] = copy.deepcopy(meta.get("annotations"))
    out["labels"] = copy.deepcopy(meta.get("labels"))
    return out


@dataclass
class Drill:
    """One case's object in one namespace, with the suspender of a fresh process for it."""

    case: Case
    ns: str
    cluster: KubeCluster
    kapi: kube.KubeApi
    dyn: DynamicClient
    core: client.CoreV1Api
    wait: Callable[..., Any]
    name: str = "target"

    @property
    def ref(self) -> kp.ObjectRef:
        return kp.ObjectRef(self.case.api_version, self.case.kind, self.ns, self.name)

    @property
    def plural(self) -> str:
        return self.kapi.resource(self.case.api_version, self.case.kind).plural

    def suspender(self, api: kube.KubeApi | None = None, *, listed: dict[str, Any] | None = None) -> kp.KubeSuspender:
        return kp.KubeSuspender(
            api or self.kapi,
            policy_kind=self.case.policy_kind,
            unit=kp.unit_name("policy", self.ref),
            ref=self.ref,
            patch=self.case.patch,
            listed=listed,
        )

    def listed(self) -> dict[str, Any]:
        """The object as a LIST of its namespace returns it (what a policy's selector starts from)."""
        [obj] = [
            o
            for o in self.kapi.list(self.case.api_version, self.case.kind, namespace=self.ns)
            if o["metadata"]["name"] == self.name
        ]
        return obj

    def read(self) -> dict[str, Any] | None:
        return self.kapi.get(self.case.api_version, self.case.kind, self.ns, self.name)

    def must_read(self) -> dict[str, Any]:
        obj = self.read()
        assert obj is not None, f"{self.ref} is gone"
        return obj

    def create(self) -> dict[str, Any]:
        resource = self.dyn.resources.get(api_version=self.case.api_version, kind=self.case.kind)
        resource.create(body=self.case.manifest(self.ns, self.name), namespace=self.ns)
        ready = self.case.ready
        if ready is not None:
            return self.wait(
                lambda: (o := self.read()) is not None and ready(o) and o,
                timeout=READY_TIMEOUT_S,
                what=f"{self.ref} ready",
            )
        return self.must_read()

    def delete(self) -> None:
        resource = self.dyn.resources.get(api_version=self.case.api_version, kind=self.case.kind)
        resource.delete(name=self.name, namespace=self.ns)
        self.wait(lambda: self.read() is None, timeout=READY_TIMEOUT_S, what=f"{self.ref} deleted")

    def change(self, merge_patch: dict[str, Any]) -> dict[str, Any]:
        """Another writer (a person, a controller) changes the object."""
        return self.kapi.patch(
            self.case.api_version,
            self.case.kind,
            self.ns,
            self.name,
            merge_patch,
            patch_type="merge",
            field_manager="someone-else",
        )

    # -- the audit log: which writes did the test user make on this object? --

    def settle(self) -> None:
        """Write a sentinel and wait for it in the audit log: every earlier request's event is there by then."""
        name = f"sentinel-{uuid.uuid4().hex[:8]}"
        self.core.create_namespaced_config_map(self.ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name)))

        def seen() -> bool:
            return any(
                ev["objectRef"].get("name") == name and ev["verb"] == "create"
                for ev in self.cluster.audit_events(user=ADMIN, namespace=self.ns)
            )

        self.wait(seen, timeout=AUDIT_TIMEOUT_S, what=f"audit event of {name}")

    def writes(self) -> dict[str, dict[str, Any]]:
        """Every write by the test user on this object (not on its subresources), by audit id."""
        plural = self.plural
        return {
            ev["auditID"]: ev
            for ev in self.cluster.audit_events(user=ADMIN, namespace=self.ns)
            if ev["objectRef"].get("resource") == plural
            and ev["objectRef"].get("name") == self.name
            and not ev["objectRef"].get("subresource")
        }

    def writes_during(self, action: Callable[[], Any]) -> tuple[Any, list[dict[str, Any]]]:
        self.settle()
        before = self.writes()
        result = action()
        self.settle()
        after = self.writes()
        return result, [ev for key, ev in after.items() if key not in before]


def _successful(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [ev for ev in events if int(ev.get("responseStatus", {}).get("code", 0)) < 300]


@pytest.fixture(params=CASES, ids=[c.id for c in CASES])
def drill(
    request: pytest.FixtureRequest,
    *,
    kube_cluster: KubeCluster,
    kube_api: client.ApiClient,
    kube_namespace: str,
    kube_wait: Callable[..., Any],
    kapi: kube.KubeApi,
    dyn: DynamicClient,
) -> Drill:
    return Drill(request.param, kube_namespace, kube_cluster, kapi, dyn, client.CoreV1Api(kube_api), kube_wait)


# -- the contract, per policy kind -------------------------------------------------------------------------


def test_claim_and_suspend_is_one_write_and_restore_gives_back_exactly_the_snapshot(drill: Drill) -> None:
    before = drill.create()
    s = drill.suspender()
    snapshot = s.snapshot()
    assert snapshot["uid"] == before["metadata"]["uid"]
    assert s.marker() is None

    def claim_and_suspend() -> dict[str, Any]:
        prior = s.claim(_marker())
        s.suspend(run_id="run-1")
        return prior

    prior, events = drill.writes_during(claim_and_suspend)
    assert [(ev["verb"], ev["responseStatus"]["code"]) for ev in _successful(events)] == [("patch", 200)]
    assert all(ev["verb"] == "patch" for ev in events)
    assert prior == snapshot  # the prior is what the object held right before the claim

    assert s.verify_suspended(run_id="run-1")
    marker = s.marker()
    assert marker is not None
    assert (marker.run_id, marker.policy, marker.kind) == ("run-1", s.name, drill.case.policy_kind)
    assert marker.original == prior and marker.instance == before["metadata"]["uid"] and marker.deadline_at == 2e9
    suspended = drill.must_read()
    assert suspended["metadata"]["labels"][kp.LABEL_KEY] == "true"
    assert kp.mismatches(suspended, prior["fields"]) == []
    assert s.describe(prior) != s.describe(s.suspended_value())
    assert _comparable(suspended) != _comparable(before)  # something was suspended

    # a retried claim of the same run (another process) returns its own marker's original, without a write
    again, events = drill.writes_during(lambda: drill.suspender().claim(_marker()))
    assert again == prior and events == []

    restorer = drill.suspender()  # `drill restore` in another process: the unit name and the prior are enough
    restorer.restore(prior, run_id="run-1")
    assert restorer.verify_restored(prior, run_id="run-1")
    after = drill.must_read()
    assert _comparable(after) == _comparable(before)
    assert after["metadata"]["uid"] == before["metadata"]["uid"]
    assert restorer.marker() is None and not restorer.verify_suspended(run_id="run-1")

    _, events = drill.writes_during(lambda: restorer.restore(prior, run_id="run-1"))
    assert events == []  # idempotent: nothing left to do, nothing written
    assert restorer.verify_restored(prior, run_id="run-1")
    assert _comparable(drill.must_read()) == _comparable(before)


def test_object_deleted_during_the_drill_is_reported_and_not_recreated(drill: Drill) -> None:
    drill.create()
    s = drill.suspender()
    prior = s.claim(_marker())
    s.suspend(run_id="run-1")
    drill.delete()
    with pytest.raises(errors.ObjectGoneError, match="deleted during the drill; not recreated"):
        drill.suspender().restore(prior, run_id="run-1")
    assert drill.read() is None
    with pytest.raises(errors.PolicyError):
        s.verify_restored(prior, run_id="run-1")


def test_object_replaced_during_the_drill_is_not_touched(drill: Drill) -> None:
    old_uid = drill.create()["metadata"]["uid"]
    s = drill.suspender()
    prior = s.claim(_marker())
    s.suspend(run_id="run-1")
    drill.delete()
    fresh = drill.create()
    new_uid = fresh["metadata"]["uid"]
    assert new_uid != old_uid

    def restore() -> None:
        with pytest.raises(errors.ObjectGoneError) as gone:
            drill.suspender().restore(prior, run_id="run-1")
        assert f"replaced during the drill (uid {old_uid} -> {new_uid}); not touched" in str(gone.value)

    _, events = drill.writes_during(restore)
    assert events == []
    assert _comparable(drill.must_read()) == _comparable(fresh)
    with pytest.raises(errors.PolicyError, match=new_uid):
        s.verify_restored(prior, run_id="run-1")


def test_a_change_to_another_field_during_the_drill_survives_the_restore(drill: Drill) -> None:
    before = drill.create()
    s = drill.suspender()
    prior = s.claim(_marker())
    s.suspend(run_id="run-1")
    drill.change(drill.case.other)
    s.restore(prior, run_id="run-1")
    assert s.verify_restored(prior, run_id="run-1")
    # everything as before, but the other writer's change (spec or data fields)
    changed = kp.deep_merge(_comparable(before), drill.case.other)
    assert _comparable(drill.must_read()) == changed


def test_a_change_to_a_touched_field_is_a_conflict_unless_forced(drill: Drill) -> None:
    before = drill.create()
    s = drill.suspender()
    prior = s.claim(_marker())
    s.suspend(run_id="run-1")
    drill.change(drill.case.same)
    changed = drill.must_read()
    assert not s.verify_suspended(run_id="run-1")

    def restore() -> None:
        with pytest.raises(errors.RestoreConflictError) as conflict:
            drill.suspender().restore(prior, run_id="run-1")
        text = str(conflict.value)
        assert drill.case.same_text in text
        assert "`drill restore run-1 --force` overwrites it" in text

    _, events = drill.writes_during(restore)
    assert events == []  # nothing written
    now = drill.must_read()
    assert _comparable(now) == _comparable(changed)
    marker = s.marker()
    assert marker is not None and marker.run_id == "run-1"  # the marker stays

    drill.suspender().restore(prior, run_id="run-1", force=True)
    assert s.marker() is None
    assert s.verify_restored(prior, run_id="run-1")
    assert _comparable(drill.must_read()) == _comparable(before)


def test_a_touched_field_changed_between_the_restores_read_and_write_fails_its_test_and_writes_nothing(
    drill: Drill, monkeypatch: pytest.MonkeyPatch
) -> None:
    drill.create()
    s = drill.suspender()
    prior = s.claim(_marker())
    stale = drill.must_read()  # what the restore will read ...
    drill.change(drill.case.same)  # ... before this change lands, right before its JSON patch
    changed = drill.must_read()
    real_get = kube.KubeApi.get
    calls: list[str] = []

    def get_once_stale(self: kube.KubeApi, api_version: str, kind: str, namespace: str, name: str) -> Any:
        calls.append(name)
        return copy.deepcopy(stale) if len(calls) == 1 else real_get(self, api_version, kind, namespace, name)

    def restore() -> None:
        with pytest.raises(errors.RestoreConflictError, match=re.escape(drill.case.same_text)):
            drill.suspender().restore(prior, run_id="run-1")

    monkeypatch.setattr(kube.KubeApi, "get", get_once_stale)
    _, events = drill.writes_during(restore)
    monkeypatch.undo()
    # the JSON patch went out and its test failed (422): nothing written
    assert [(ev["verb"], ev["responseStatus"]["code"]) for ev in events] == [("patch", 422)]
    assert _comparable(drill.must_read()) == _comparable(changed)
    marker = s.marker()
    assert marker is not None and marker.run_id == "run-1"


def test_a_second_runs_claim_is_refused_and_writes_nothing(drill: Drill) -> None:
    drill.create()
    s = drill.suspender()
    prior = s.claim(_marker("run-1"))
    s.suspend(run_id="run-1")
    held = drill.must_read()

    def second_claim() -> None:
        with pytest.raises(errors.MarkerConflictError, match=r"run run-1.*`drill restore run-1`"):
            drill.suspender().claim(_marker("run-2"))
        with pytest.raises(errors.MarkerConflictError, match="run-1"):
            drill.suspender().suspend(run_id="run-2")
        with pytest.raises(errors.MarkerConflictError, match="run-1"):
            drill.suspender().restore(prior, run_id="run-2")

    _, events = drill.writes_during(second_claim)
    assert events == []
    assert _comparable(drill.must_read()) == _comparable(held)
    s.restore(prior, run_id="run-1")
    assert s.verify_restored(prior, run_id="run-1")


def test_a_claim_racing_another_writer_gets_409_and_retries(drill: Drill, monkeypatch: pytest.MonkeyPatch) -> None:
    before = drill.create()
    stale = drill.must_read()
    drill.change(drill.case.other)  # another writer, after our GET and before our PATCH
    snapshot = drill.suspender().snapshot()
    real_get = kube.KubeApi.get
    calls: list[str] = []

    def get_once_stale(self: kube.KubeApi, api_version: str, kind: str, namespace: str, name: str) -> Any:
        calls.append(name)
        if len(calls) == 1:
            return copy.deepcopy(stale)
        return real_get(self, api_version, kind, namespace, name)

    monkeypatch.setattr(kube.KubeApi, "get", get_once_stale)
    s = drill.suspender()
    prior, events = drill.writes_during(lambda: s.claim(_marker()))
    monkeypatch.undo()
    codes = [(ev["verb"], ev["responseStatus"]["code"]) for ev in events]
    assert codes[0] == ("patch", 409) and codes[-1] == ("patch", 200) and len(_successful(events)) == 1, codes
    assert len(calls) >= 2
    fresh = drill.must_read()
    assert prior == snapshot  # read again after the 409: the object as the other writer left it
    s.suspend(run_id="run-1")
    assert s.verify_suspended(run_id="run-1")
    s.restore(prior, run_id="run-1")
    assert s.verify_restored(prior, run_id="run-1")
    # the other writer's change survived both the claim and the restore
    assert _comparable(drill.must_read()) != _comparable(before)
    assert fresh["metadata"]["uid"] == before["metadata"]["uid"]
    other_leaves = kp.flatten_merge_patch(drill.case.other)
    for ptr, value in other_leaves:
        assert kp.lookup(drill.must_read(), ptr) == (True, value)


def test_a_claim_from_the_listed_copy_is_one_request_and_a_stale_copy_costs_a_409_not_a_wrong_prior(
    drill: Drill,
) -> None:
    drill.create()
    listed = drill.listed()
    s = drill.suspender(listed=listed)
    snapshot = s.snapshot()
    prior, events = drill.writes_during(lambda: s.claim(_marker()))
    codes = [(ev["verb"], ev["responseStatus"]["code"]) for ev in events]
    # one write; a 409 before it only when a controller was still writing the object's status since the list
    assert codes[-1] == ("patch", 200) and set(codes[:-1]) <= {("patch", 409)}, codes
    assert prior == snapshot
    s.restore(prior, run_id="run-1")
    assert s.verify_restored(prior, run_id="run-1")

    stale = drill.listed()
    drill.change(drill.case.other)  # another writer, after the list and before the claim
    fresh = drill.suspender().snapshot()
    s = drill.suspender(listed=stale)
    prior, events = drill.writes_during(lambda: s.claim(_marker("run-2")))
    codes = [(ev["verb"], ev["responseStatus"]["code"]) for ev in events]
    assert codes[0] == ("patch", 409) and codes[-1] == ("patch", 200) and len(_successful(events)) == 1, codes
    assert prior == fresh  # read again after the 409: the object as the other writer left it
    s.restore(prior, run_id="run-2")
    assert s.verify_restored(prior, run_id="run-2")


def _counting_gets(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the objects read (GET) from now on, through the real client."""
    real_get = kube.KubeApi.get
    calls: list[str] = []

    def get(self: kube.KubeApi, api_version: str, kind: str, namespace: str, name: str) -> Any:
        calls.append(name)
        return real_get(self, api_version, kind, namespace, name)

    monkeypatch.setattr(kube.KubeApi, "get", get)
    return calls


def test_the_suspending_units_own_restore_starts_from_its_last_copy_without_a_read(
    drill: Drill, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = drill.create()
    s = drill.suspender()
    prior = s.claim(_marker())
    s.suspend(run_id="run-1")
    drill.change(drill.case.other)  # a field the drill does not touch: the copy is stale, the restore still true
    gets = _counting_gets(monkeypatch)
    _, events = drill.writes_during(lambda: s.restore(prior, run_id="run-1"))
    assert gets == []
    assert [(ev["verb"], ev["responseStatus"]["code"]) for ev in events] == [("patch", 200)]
    monkeypatch.undo()
    assert s.verify_restored(prior, run_id="run-1")
    assert _comparable(drill.must_read()) == kp.deep_merge(_comparable(before), drill.case.other)


def test_the_suspending_units_restore_from_a_copy_no_longer_true_gets_a_422_then_reads_and_refuses(
    drill: Drill,
) -> None:
    drill.create()
    s = drill.suspender()
    prior = s.claim(_marker())
    s.suspend(run_id="run-1")
    drill.change(drill.case.same)  # a touched field: the restore must see the conflict
    changed = drill.must_read()

    def restore() -> None:
        with pytest.raises(errors.RestoreConflictError, match=re.escape(drill.case.same_text)):
            s.restore(prior, run_id="run-1")

    _, events = drill.writes_during(restore)
    assert [(ev["verb"], ev["responseStatus"]["code"]) for ev in events] == [("patch", 422)]
    assert _comparable(drill.must_read()) == _comparable(changed)
    marker = s.marker()
    assert marker is not None and marker.run_id == "run-1"
    s.restore(prior, run_id="run-1", force=True)
    assert s.verify_restored(prior, run_id="run-1")


def test_a_listed_copy_with_a_marker_is_asked_again(drill: Drill) -> None:
    drill.create()
    first = drill.suspender()
    prior = first.claim(_marker("run-1"))
    marked = drill.listed()  # listed while run-1 held it
    first.restore(prior, run_id="run-1")
    assert first.verify_restored(prior, run_id="run-1")
    s = drill.suspender(listed=marked)
    s.dry_run()  # not refused: the marker is gone
    assert s.claim(_marker("run-2")) == prior
    s.restore(prior, run_id="run-2")
    assert s.verify_restored(prior, run_id="run-2")


# -- single cases ------------------------------------------------------------------------------------------


def _widget(ns: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": f"{WIDGET_GROUP}/v1",
        "kind": "Widget",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def test_a_schema_default_that_comes_back_on_removal_is_restored_to_the_snapshot(
    kube_namespace: str, kapi: kube.KubeApi, dyn: DynamicClient
) -> None:
    ns = kube_namespace
    widgets = dyn.resources.get(api_version=f"{WIDGET_GROUP}/v1", kind="Widget")
    widgets.create(body=_widget(ns, "w", {}), namespace=ns)
    before = kapi.get(f"{WIDGET_GROUP}/v1", "Widget", ns, "w")
    assert before is not None
    assert before["spec"] == {"mode": "auto"}  # defaulted by the schema; no autoscale object at all

    # The default is real: removing only the touched leaf brings the default back (true, not absent).
    widgets.create(body=_widget(ns, "naive", {"autoscale": {"enabled": False}}), namespace=ns)
    naive = kapi.patch(
        f"{WIDGET_GROUP}/v1",
        "Widget",
        ns,
        "naive",
        [{"op": "remove", "path": "/spec/autoscale/enabled"}],
        patch_type="json",
    )
    assert naive["spec"]["autoscale"] == {"enabled": True, "interval": "30s"}

    ref = kp.ObjectRef(f"{WIDGET_GROUP}/v1", "Widget", ns, "w")
    s = kp.KubeSuspender(
        kapi,
        policy_kind="generic",
        unit=kp.unit_name("p", ref),
        ref=ref,
        patch={"spec": {"autoscale": {"enabled": False}}},
    )
    prior = s.claim(_marker())
    assert prior["fields"] == [
        {"path": "/spec/autoscale", "present": False, "value": None, "suspended": {"enabled": False}}
    ]
    suspended = kapi.get(f"{WIDGET_GROUP}/v1", "Widget", ns, "w")
    assert suspended is not None and suspended["spec"]["autoscale"] == {"enabled": False, "interval": "30s"}
    assert s.verify_suspended(run_id="run-1")
    s.restore(prior, run_id="run-1")
    after = kapi.get(f"{WIDGET_GROUP}/v1", "Widget", ns, "w")
    assert after is not None and after["spec"] == before["spec"] == {"mode": "auto"}
    assert s.verify_restored(prior, run_id="run-1")


def test_dry_run_checks_the_change_with_the_server_and_writes_nothing(
    kube_namespace: str, kapi: kube.KubeApi, dyn: DynamicClient
) -> None:
    ns = kube_namespace
    vpas = dyn.resources.get(api_version="autoscaling.k8s.io/v1", kind="VerticalPodAutoscaler")
    target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}
    vpas.create(
        body={
            "apiVersion": "autoscaling.k8s.io/v1",
            "kind": "VerticalPodAutoscaler",
            "metadata": {"name": "web", "namespace": ns},
            "spec": {"targetRef": target, "updatePolicy": {"updateMode": "Recreate"}},
        },
        namespace=ns,
    )
    ref = kp.ObjectRef("autoscaling.k8s.io/v1", "VerticalPodAutoscaler", ns, "web")
    before = kapi.get(ref.api_version, ref.kind, ns, "web")
    good = kp.KubeSuspender(kapi, policy_kind="vpa", unit=kp.unit_name("p", ref), ref=ref)
    good.dry_run()
    bad = kp.KubeSuspender(
        kapi,
        policy_kind="generic",
        unit=kp.unit_name("p", ref),
        ref=ref,
        patch={"spec": {"updatePolicy": {"updateMode": "Sometimes"}}},
    )
    with pytest.raises(errors.PolicyError, match=r"refuses to suspend .*updateMode"):
        bad.dry_run()
    assert kapi.get(ref.api_version, ref.kind, ns, "web") == before  # not even the resourceVersion moved


def test_forbidden_is_reported_with_verb_and_resource_and_never_the_token(
    kube_cluster: KubeCluster, kube_api: client.ApiClient, kube_namespace: str, tmp_path: Path
) -> None:
    ns = kube_namespace
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cfg"), data={"a": "1"}))
    core.create_namespaced_service_account(ns, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="reader")))
    token = core.create_namespaced_service_account_token(
        "reader", ns, client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[]))
    ).status.token
    kubeconfig = tmp_path / "reader.kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "c",
                        "cluster": {"server": kube_cluster.server, "certificate-authority": str(kube_cluster.ca_file)},
                    }
                ],
                "users": [{"name": "reader", "user": {"token": token}}],
                "contexts": [{"name": "reader", "context": {"cluster": "c", "user": "reader"}}],
                "current-context": "reader",
            }
        ),
        encoding="utf-8",
    )
    api = kube.KubeConfigRef(str(kubeconfig), "reader").load()
    ref = kp.ObjectRef("v1", "ConfigMap", ns, "cfg")
    s = kp.KubeSuspender(api, policy_kind="generic", unit=kp.unit_name("p", ref), ref=ref, patch={"data": {"a": "2"}})
    with pytest.raises(kube.KubeForbidden) as denied:
        s.claim(_marker())
    text = str(denied.value)
    assert denied.value.status == 403
    assert f"get ConfigMap {ns}/cfg: 403 Forbidden" in text and "configmaps" in text
    assert token not in text and token[:20] not in text
    allowed, _ = api.can_i("patch", group="", resource="configmaps", namespace=ns)
    assert not allowed
    api.close()


def test_an_unreachable_api_server_is_retried_with_backoff_then_reported(
    kube_cluster: KubeCluster, tmp_path: Path
) -> None:
    dead = yaml.safe_load(kube_cluster.kubeconfig.read_text(encoding="utf-8"))
    dead["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:9"  # discard port: nothing listens
    path = tmp_path / "dead.kubeconfig"
    path.write_text(yaml.safe_dump(dead), encoding="utf-8")
    api = kube.KubeConfigRef(str(path), dead["contexts"][0]["name"]).load()
    with pytest.raises(kube.KubeUnavailable) as unreachable:
        api.server_version()
    assert unreachable.value.status is None

    sleeps: list[float] = []
    ref = kp.ObjectRef("v1", "ConfigMap", "default", "cfg")
    s = kp.KubeSuspender(
        api,
        policy_kind="generic",
        unit=kp.unit_name("p", ref),
        ref=ref,
        patch={"data": {"a": "b"}},
        unreachable_timeout_s=2.0,
        sleep=sleeps.append,
    )
    started = time.monotonic()
    with pytest.raises(errors.TargetError, match=r"did not answer for 2s.*`drill restore run-1` tries again") as err:
        s.restore({"uid": "u", "fields": []}, run_id="run-1")
    assert time.monotonic() - started < 60
    assert sleeps[:3] == [0.2, 0.4, 0.8] and max(sleeps) <= 5.0
    assert kube_cluster.admin_token not in str(err.value)
    api.close()


def test_lease_acquire_refuse_renew_release_and_take_over_when_expired(
    kube_cluster: KubeCluster, kube_namespace: str, kapi: kube.KubeApi
) -> None:
    ns = kube_namespace
    assert (
        kapi.acquire_lease(ns, "drill-lock", holder="run-a", duration_s=30, annotations={"drill.dev/host": "h1"})
        is None
    )
    # held: a second run is refused with the holder's Lease
    other = kapi.acquire_lease(ns, "drill-lock", holder="run-b", duration_s=30, annotations={"drill.dev/host": "h2"})
    assert other is not None and other["spec"]["holderIdentity"] == "run-a"
    assert other["metadata"]["annotations"]["drill.dev/host"] == "h1"
    # the holder renews (and re-acquiring is a renewal)
    kapi.renew_lease(ns, "drill-lock", holder="run-a")
    assert kapi.acquire_lease(ns, "drill-lock", holder="run-a", duration_s=30, annotations={}) is None
    with pytest.raises(kube.KubeConflict, match="held by run-a, not run-b"):
        kapi.renew_lease(ns, "drill-lock", holder="run-b")
    # not the holder: release does nothing
    kapi.release_lease(ns, "drill-lock", holder="run-b")
    assert kapi.acquire_lease(ns, "drill-lock", holder="run-b", duration_s=30, annotations={}) is not None
    # a Lease not renewed for its duration is free: seen from a clock 60 s ahead, run-b takes it over
    with kube_cluster.api_client() as raw:
        later = kube.KubeApi(raw, now=lambda: time.time() + 60)
        assert (
            later.acquire_lease(ns, "drill-lock", holder="run-b", duration_s=30, annotations={"drill.dev/host": "h2"})
            is None
        )
        taken = client.CoordinationV1Api(raw).read_namespaced_lease("drill-lock", ns)
    assert taken.spec.holder_identity == "run-b" and taken.spec.lease_transitions == 1
    kapi.release_lease(ns, "drill-lock", holder="run-b")
    assert kapi.acquire_lease(ns, "drill-lock", holder="run-c", duration_s=30, annotations={}) is None
    kapi.release_lease(ns, "drill-lock", holder="run-c")
    with pytest.raises(kube.KubeNotFound):
        kapi.renew_lease(ns, "drill-lock", holder="run-c")
