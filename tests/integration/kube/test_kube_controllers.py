"""Controllers really run: a Deployment reaches its Ready replicas and replaces a deleted pod."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

from tests.integration.kube.conftest import deployment

pytestmark = pytest.mark.kube


def ready_pods(core: client.CoreV1Api, ns: str, selector: str) -> list[client.V1Pod]:
    pods = core.list_namespaced_pod(ns, label_selector=selector).items
    return [
        p
        for p in pods
        if p.metadata.deletion_timestamp is None
        and p.status.phase == "Running"
        and any(c.type == "Ready" and c.status == "True" for c in (p.status.conditions or []))
    ]


def test_deployment_reaches_ready_and_replaces_deleted_pod(
    kube_api: client.ApiClient, kube_namespace: str, kube_wait: Callable[..., Any]
) -> None:
    apps = client.AppsV1Api(kube_api)
    core = client.CoreV1Api(kube_api)
    apps.create_namespaced_deployment(kube_namespace, deployment("web", 3))

    pods = kube_wait(
        lambda: (p := ready_pods(core, kube_namespace, "app=web")) and len(p) == 3 and p,
        timeout=90,
        what="3 Ready pods of deployment web",
    )
    # the scheduler placed them on kwok nodes
    assert all(p.spec.node_name and p.spec.node_name.startswith("kwok-node-") for p in pods)
    kube_wait(
        lambda: (apps.read_namespaced_deployment_status("web", kube_namespace).status.ready_replicas or 0) == 3,
        timeout=60,
        what="deployment web status.readyReplicas == 3",
    )

    victim = pods[0].metadata.name
    before = {p.metadata.name for p in pods}
    core.delete_namespaced_pod(victim, kube_namespace)

    def replaced() -> list[client.V1Pod] | None:
        now = ready_pods(core, kube_namespace, "app=web")
        names = {p.metadata.name for p in now}
        if len(now) == 3 and victim not in names and names - before:
            return now
        return None

    after = kube_wait(replaced, timeout=90, what="a new Ready pod replacing the deleted one")
    new = {p.metadata.name for p in after} - before
    assert len(new) == 1
    # the deleted pod is really gone (kwok finalised it), not left Terminating
    kube_wait(
        lambda: victim not in {p.metadata.name for p in core.list_namespaced_pod(kube_namespace).items},
        timeout=60,
        what=f"pod {victim} to disappear",
    )
    kube_wait(
        lambda: (apps.read_namespaced_deployment("web", kube_namespace).status.available_replicas or 0) == 3,
        timeout=60,
        what="deployment web back to 3 available replicas",
    )
