"""The audit log shows which write requests a test made, and by which user."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.integration.kube.conftest import bind_role, deployment

if TYPE_CHECKING:
    from .conftest import KubeCluster

pytestmark = pytest.mark.kube

MERGE = "application/merge-patch+json"


def _summary(events: list[dict[str, Any]]) -> set[tuple[str, str, str, int]]:
    return {
        (
            ev["verb"],
            ev["objectRef"].get("resource", ""),
            ev["objectRef"].get("name", ""),
            int(ev.get("responseStatus", {}).get("code", 0)),
        )
        for ev in events
    }


def test_audit_log_records_writes_by_user(
    kube_cluster: KubeCluster,
    kube_api: client.ApiClient,
    kube_namespace: str,
    kube_wait: Callable[..., Any],
) -> None:
    ns = kube_namespace
    core = client.CoreV1Api(kube_api)
    rbac = client.RbacAuthorizationV1Api(kube_api)
    apps = client.AppsV1Api(kube_api)

    # admin writes
    core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="audited"), data={}))
    core.patch_namespaced_config_map("audited", ns, {"data": {"k": "v"}}, _content_type=MERGE)
    core.list_namespaced_config_map(ns)  # a read: not audited by the policy
    apps.create_namespaced_deployment(ns, deployment("audited", 1))

    # a ServiceAccount allowed to patch that ConfigMap only
    core.create_namespaced_service_account(ns, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="writer")))
    rbac.create_namespaced_role(
        ns,
        client.V1Role(
            metadata=client.V1ObjectMeta(name="writer"),
            rules=[
                client.V1PolicyRule(
                    api_groups=[""], resources=["configmaps"], resource_names=["audited"], verbs=["patch"]
                )
            ],
        ),
    )
    bind_role(rbac, ns, role="writer", service_account="writer")
    token = core.create_namespaced_service_account_token(
        "writer", ns, client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[]))
    ).status.token
    sa_user = f"system:serviceaccount:{ns}:writer"
    with kube_cluster.api_client(token=token) as sa_api:
        sa_core = client.CoreV1Api(sa_api)
        sa_core.patch_namespaced_config_map("audited", ns, {"data": {"k": "by-sa"}}, _content_type=MERGE)
        with pytest.raises(ApiException) as denied:
            sa_core.delete_namespaced_config_map("audited", ns)
        assert denied.value.status == 403

    admin_expected = {
        ("create", "namespaces", ns, 201),
        ("create", "configmaps", "audited", 201),
        ("patch", "configmaps", "audited", 200),
        ("create", "deployments", "audited", 201),
        ("create", "serviceaccounts", "writer", 201),
        ("create", "roles", "writer", 201),
        ("create", "rolebindings", "writer", 201),
        ("create", "serviceaccounts", "writer", 201),  # the TokenRequest (subresource "token")
    }
    sa_expected = {("patch", "configmaps", "audited", 200), ("delete", "configmaps", "audited", 403)}

    def admin_and_sa_events() -> tuple[set[tuple[str, str, str, int]], set[tuple[str, str, str, int]]] | None:
        admin = _summary(kube_cluster.audit_events(user="drill-admin", namespace=ns))
        admin |= _summary(
            [
                ev
                for ev in kube_cluster.audit_events(user="drill-admin")
                if ev["objectRef"].get("resource") == "namespaces" and ev["objectRef"].get("name") == ns
            ]
        )
        sa = _summary(kube_cluster.audit_events(user=sa_user, namespace=ns))
        return (admin, sa) if admin_expected <= admin and sa_expected <= sa else None

    admin, sa = kube_wait(admin_and_sa_events, timeout=30, what="the test's writes in the audit log")
    assert sa == sa_expected  # the ServiceAccount did exactly these writes, nothing else
    assert not any(v in {"get", "list", "watch"} for v, *_ in admin)  # reads are not logged

    # The controllers' writes are attributed to their own ServiceAccounts (--use-service-account-credentials).
    def controller_writes() -> set[str] | None:
        users = {ev["user"]["username"] for ev in kube_cluster.audit_events(namespace=ns)}
        wanted = {
            "system:serviceaccount:kube-system:deployment-controller",
            "system:serviceaccount:kube-system:replicaset-controller",
        }
        return users if wanted <= users else None

    users = kube_wait(controller_writes, timeout=60, what="controller writes in the audit log")
    assert "drill-admin" in users
    rs_pod_creates = [
        ev
        for ev in kube_cluster.audit_events(
            user="system:serviceaccount:kube-system:replicaset-controller", namespace=ns
        )
        if ev["verb"] == "create" and ev["objectRef"].get("resource") == "pods"
    ]
    assert rs_pod_creates, "the ReplicaSet controller's pod create is in the audit log"
