"""chaostoolkit-kubernetes's terminate_pods action and deployment_available_and_healthy probe work here."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from chaosk8s.deployment.probes import deployment_available_and_healthy
from chaosk8s.pod.actions import terminate_pods
from chaoslib.exceptions import ActivityFailed
from kubernetes import client
from kubernetes.config import kube_config

if TYPE_CHECKING:
    from .conftest import KubeCluster

from tests.integration.kube.conftest import deployment

pytestmark = pytest.mark.kube


@pytest.fixture
def chaosk8s_env(kube_cluster: KubeCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    """chaosk8s builds its client from $KUBECONFIG and sets kubernetes' global default configuration."""
    monkeypatch.setenv("KUBECONFIG", str(kube_cluster.kubeconfig))
    # kubernetes.config reads $KUBECONFIG once, when it is imported; chaosk8s then calls
    # load_kube_config() without a path, so the import-time default must point at this cluster too.
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kube_cluster.kubeconfig))
    monkeypatch.delenv("KUBERNETES_CONTEXT", raising=False)
    # restore the kubernetes client's process-wide defaults that chaosk8s changes
    monkeypatch.setattr(client.Configuration, "_default", client.Configuration._default)
    monkeypatch.setattr(
        client.Configuration, "verify_ssl", getattr(client.Configuration, "verify_ssl", True), raising=False
    )
    monkeypatch.setattr(client.Configuration, "debug", getattr(client.Configuration, "debug", False), raising=False)


@pytest.mark.usefixtures("chaosk8s_env")
def test_terminate_pods_then_deployment_recovers(
    kube_api: client.ApiClient, kube_namespace: str, kube_wait: Callable[..., Any]
) -> None:
    ns = kube_namespace
    core = client.CoreV1Api(kube_api)
    client.AppsV1Api(kube_api).create_namespaced_deployment(ns, deployment("shop", 3))

    kube_wait(
        lambda: deployment_available_and_healthy("shop", ns, raise_on_unavailable=False),
        timeout=90,
        what="chaosk8s probe: deployment shop available and healthy",
    )
    assert deployment_available_and_healthy("shop", ns, label_selector="app=shop") is True
    before = {p.metadata.name for p in core.list_namespaced_pod(ns, label_selector="app=shop").items}
    assert len(before) == 3

    killed = terminate_pods(label_selector="app=shop", ns=ns, qty=2, order="oldest")
    assert len(killed) == 2
    assert set(killed) <= before

    def recovered() -> bool:
        pods = core.list_namespaced_pod(ns, label_selector="app=shop").items
        names = {p.metadata.name for p in pods}
        return (
            not (names & set(killed))
            and len(names) == 3
            and bool(deployment_available_and_healthy("shop", ns, raise_on_unavailable=False))
        )

    kube_wait(recovered, timeout=90, what="2 terminated pods replaced and deployment healthy again")


@pytest.mark.usefixtures("chaosk8s_env")
def test_probe_fails_when_deployment_cannot_become_available(
    kube_api: client.ApiClient, kube_namespace: str, kube_wait: Callable[..., Any]
) -> None:
    ns = kube_namespace
    apps = client.AppsV1Api(kube_api)
    apps.create_namespaced_deployment(ns, deployment("stuck", 2, node_selector={"drill.test/no-such-node": "x"}))
    # the scheduler really refuses: the pods stay Pending and Unschedulable
    core = client.CoreV1Api(kube_api)

    def unschedulable() -> bool:
        pods = core.list_namespaced_pod(ns, label_selector="app=stuck").items
        return len(pods) == 2 and all(
            any(c.type == "PodScheduled" and c.reason == "Unschedulable" for c in (p.status.conditions or []))
            for p in pods
        )

    kube_wait(unschedulable, timeout=60, what="pods of deployment stuck marked Unschedulable")
    assert deployment_available_and_healthy("stuck", ns, raise_on_unavailable=False) is False
    with pytest.raises(ActivityFailed, match="is not healthy"):
        deployment_available_and_healthy("stuck", ns)
    with pytest.raises(ActivityFailed, match="was not found"):
        deployment_available_and_healthy("no-such-deployment", ns)
