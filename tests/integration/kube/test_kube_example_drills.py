"""The example drills of drills/kubernetes/ on the example shop, with the example Remediator operator running.

No-automation: all six kinds of remediation around web are suspended and verified, chaosk8s scales web to zero,
the suspended operator does not repair it (it logs that it skips), the simulated responder mitigates, the report's
timings follow the responder, and every object ends exactly as it was with no trace of drill.
Auto-recovery: the same fault with automation on; the operator repairs web and the report times that.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, dynamic

from tests.conftest import DrillEnv, read_report, reported_dir
from tests.integration.kube.conftest import KubeCluster
from tests.integration.kube.test_remediator import Operator

pytestmark = pytest.mark.kube

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "drills" / "kubernetes"
KINDS = [
    ("autoscaling/v2", "HorizontalPodAutoscaler", "web"),
    ("batch/v1", "CronJob", "web-restarter"),
    ("keda.sh/v1alpha1", "ScaledObject", "web"),
    ("argoproj.io/v1alpha1", "Application", "shop"),
    ("kustomize.toolkit.fluxcd.io/v1", "Kustomization", "shop"),
    ("remediation.drill.dev/v1", "Remediator", "web"),
]


def _install_shop(api: client.ApiClient, ns: str) -> None:
    dyn = dynamic.DynamicClient(api)
    for doc in yaml.safe_load_all((EXAMPLES / "manifests" / "app.yaml").read_text(encoding="utf-8")):
        if not doc or doc["kind"] == "Namespace":
            continue
        body = copy.deepcopy(doc)
        body["metadata"]["namespace"] = ns
        if body["kind"] == "Application":
            body["spec"]["destination"]["namespace"] = ns
        if body["kind"] == "Kustomization":
            body["spec"]["targetNamespace"] = ns
        dyn.resources.get(api_version=body["apiVersion"], kind=body["kind"]).create(body=body, namespace=ns)


def _state(api: client.ApiClient, ns: str) -> dict[str, Any]:
    dyn = dynamic.DynamicClient(api)
    state: dict[str, Any] = {}
    for api_version, kind, name in KINDS:
        obj = dyn.resources.get(api_version=api_version, kind=kind).get(name=name, namespace=ns).to_dict()
        meta = obj["metadata"]
        state[f"{kind}/{name}"] = {
            "spec": obj["spec"],
            "labels": meta.get("labels") or {},
            "annotations": meta.get("annotations") or {},
            "uid": meta["uid"],
        }
    return state


def _drill_for(ns: str, folder: Path, name: str, kubeconfig: Path) -> Path:
    """The example drill file, pointed at namespace ``ns`` and the test cluster's kubeconfig."""
    data = yaml.safe_load((EXAMPLES / name).read_text(encoding="utf-8"))
    target = data["spec"]["target"]
    target["namespaces"] = [ns]
    if "mitigation" in target:
        target["mitigation"]["namespace"] = ns
    for policy in data["spec"].get("policies", []):
        if "object" in policy:
            policy["object"]["namespace"] = ns
    data["spec"]["target"]["kubeconfig"] = str(kubeconfig)
    data["spec"]["experiment"]["path"] = str((EXAMPLES / data["spec"]["experiment"]["path"]).resolve())
    path = folder / name
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _web_ready(api: client.ApiClient, ns: str) -> bool:
    dep = client.AppsV1Api(api).read_namespaced_deployment("web", ns)
    return bool(dep.spec.replicas == 3 and dep.status.ready_replicas == 3)


def _remediated_events(api: client.ApiClient, ns: str) -> list[Any]:
    return [e for e in client.CoreV1Api(api).list_namespaced_event(ns).items if e.reason == "Remediated"]


@pytest.fixture
def shop(
    kube_cluster: KubeCluster, kube_api: client.ApiClient, kube_namespace: str, tmp_path: Path, kube_wait: Any
) -> Iterator[Operator]:
    _install_shop(kube_api, kube_namespace)
    kube_wait(lambda: _web_ready(kube_api, kube_namespace), timeout=60, what="web ready")
    operator = Operator(kube_cluster, kube_namespace, tmp_path / "remediator.log")
    try:
        operator.wait_line(kube_wait, r"remediator \S+/web: target=web minReplicas=3 suspend=false")
        yield operator
    finally:
        operator.kill()


def test_no_automation_example_operator_stays_off_and_responder_mitigates(  # noqa: PLR0917 (pytest fixtures)
    shop: Operator,
    kube_cluster: KubeCluster,
    kube_api: client.ApiClient,
    kube_namespace: str,
    drill_env: DrillEnv,
    run_drill: Callable[..., Any],
    tmp_path: Path,
) -> None:
    ns = kube_namespace
    before = _state(kube_api, ns)
    drill = _drill_for(ns, tmp_path, "no-automation.yaml", kube_cluster.kubeconfig)

    done = run_drill("run", str(drill), "--plain", "--auto-respond", "ack=1s,diagnose=2s,mitigate=4s,resolve=6s")

    assert done.returncode == 0, done.stdout + done.stderr
    report = read_report(reported_dir(done.stdout))
    policies = report["policies"]
    assert isinstance(policies, list) and len(policies) == 6
    assert all(p["suspension_verified"] and p["restore_verified"] for p in policies), policies
    # The operator saw web drop below its minimum while suspended and left it alone; it repaired nothing.
    log = "\n".join(shop.lines())
    assert f"skip {ns}/web: suspended" in log, log
    assert "remediate" not in log, log
    assert _remediated_events(kube_api, ns) == []
    # The responder's mitigation (at 4 s) is what brought web back: the timings follow it.
    timings = {t["name"]: t["seconds"] for t in report["timings"]}  # type: ignore[union-attr,index]
    assert 3.5 <= timings["mitigate"] <= 8.0, timings
    assert timings["acknowledge"] < timings["mitigate"] < timings["resolve"], timings
    events = [t["event"] for t in report["timeline"]]  # type: ignore[union-attr,index]
    assert events.index("mitigated") < events.index("resolved"), events
    # Every object is exactly as it was: spec, labels, annotations, same object (uid); no marker, no label.
    assert _state(kube_api, ns) == before


def test_auto_recovery_example_operator_repairs_and_report_times_it(  # noqa: PLR0917 (pytest fixtures)
    shop: Operator,
    kube_cluster: KubeCluster,
    kube_api: client.ApiClient,
    kube_namespace: str,
    tmp_path: Path,
    run_drill: Callable[..., Any],
) -> None:
    ns = kube_namespace
    before = _state(kube_api, ns)
    drill = _drill_for(ns, tmp_path, "auto-recovery.yaml", kube_cluster.kubeconfig)

    done = run_drill("run", str(drill), "--plain")

    assert done.returncode == 0, done.stdout + done.stderr
    report = read_report(reported_dir(done.stdout))
    assert report["outcome"] == "recovered", json.dumps(report, indent=1)[:3000]
    timings = {t["name"]: t for t in report["timings"]}  # type: ignore[union-attr,index]
    recover = timings["recover"]
    assert recover["met"] is True and 0 < recover["seconds"] < 30, recover
    assert f"remediate {ns}/web" in "\n".join(shop.lines())
    assert _remediated_events(kube_api, ns), "the operator's repair left no Remediated event"
    assert _state(kube_api, ns) == before  # automation was never touched
