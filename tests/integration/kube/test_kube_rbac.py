"""RBAC is really enforced: a ServiceAccount token bound to a narrow Role is refused outside it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.integration.kube.conftest import bind_role

if TYPE_CHECKING:
    from .conftest import KubeCluster

pytestmark = pytest.mark.kube


@pytest.fixture
def other_namespace(kube_api: client.ApiClient, kube_namespace: str) -> Iterator[str]:
    core = client.CoreV1Api(kube_api)
    name = f"{kube_namespace[:50]}-other"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    try:
        yield name
    finally:
        core.delete_namespace(name)


def _token_for(kube_api: client.ApiClient, ns: str, sa: str) -> str:
    core = client.CoreV1Api(kube_api)
    req = core.create_namespaced_service_account_token(
        sa,
        ns,
        client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=600)),
    )
    return str(req.status.token)


def _status_of(call: Callable[[], object]) -> int:
    try:
        call()
    except ApiException as exc:
        return int(exc.status)
    return 200


def test_service_account_limited_to_its_role(
    kube_cluster: KubeCluster, kube_api: client.ApiClient, kube_namespace: str, other_namespace: str
) -> None:
    ns = kube_namespace
    core = client.CoreV1Api(kube_api)
    rbac = client.RbacAuthorizationV1Api(kube_api)

    core.create_namespaced_service_account(
        ns, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="drill-probe"))
    )
    # narrow Role: read pods and patch one named ConfigMap, nothing else
    rbac.create_namespaced_role(
        ns,
        client.V1Role(
            metadata=client.V1ObjectMeta(name="pod-reader"),
            rules=[
                client.V1PolicyRule(api_groups=[""], resources=["pods"], verbs=["get", "list", "watch"]),
                client.V1PolicyRule(
                    api_groups=[""],
                    resources=["configmaps"],
                    resource_names=["drill-state"],
                    verbs=["get", "patch"],
                ),
            ],
        ),
    )
    bind_role(rbac, ns, role="pod-reader", service_account="drill-probe")
    for cm in ("drill-state", "other-state"):
        core.create_namespaced_config_map(
            ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name=cm), data={"phase": "idle"})
        )

    token = _token_for(kube_api, ns, "drill-probe")
    with kube_cluster.api_client(token=token) as sa_api:
        sa_core = client.CoreV1Api(sa_api)
        sa_apps = client.AppsV1Api(sa_api)
        whoami = client.AuthenticationV1Api(sa_api).create_self_subject_review(client.V1SelfSubjectReview())
        assert whoami.status.user_info.username == f"system:serviceaccount:{ns}:drill-probe"

        # inside the Role
        assert sa_core.list_namespaced_pod(ns).items == []
        patched = sa_core.patch_namespaced_config_map(
            "drill-state", ns, {"data": {"phase": "suspended"}}, _content_type="application/merge-patch+json"
        )
        assert patched.data == {"phase": "suspended"}

        # outside the Role: 403 Forbidden, and nothing changed
        refused = {
            "list deployments": lambda: sa_apps.list_namespaced_deployment(ns),
            "delete a pod": lambda: sa_core.delete_namespaced_pod("anything", ns),
            "create a pod": lambda: sa_core.create_namespaced_pod(
                ns,
                client.V1Pod(
                    metadata=client.V1ObjectMeta(name="p"),
                    spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="registry.invalid/x")]),
                ),
            ),
            "list pods in another namespace": lambda: sa_core.list_namespaced_pod(other_namespace),
            "list pods cluster-wide": sa_core.list_pod_for_all_namespaces,
            "patch another ConfigMap": lambda: sa_core.patch_namespaced_config_map(
                "other-state", ns, {"data": {"phase": "x"}}, _content_type="application/merge-patch+json"
            ),
            "list secrets": lambda: sa_core.list_namespaced_secret(ns),
            "list nodes": sa_core.list_node,
        }
        statuses = {what: _status_of(call) for what, call in refused.items()}
        assert statuses == dict.fromkeys(refused, 403)

    assert core.read_namespaced_config_map("other-state", ns).data == {"phase": "idle"}

    # a forged token is not a user at all: 401
    with kube_cluster.api_client(token="not-a-real-token") as bad_api:
        assert _status_of(lambda: client.CoreV1Api(bad_api).list_namespaced_pod(ns)) == 401

    # the authorizer agrees when asked directly
    review = client.AuthorizationV1Api(kube_api).create_subject_access_review(
        client.V1SubjectAccessReview(
            spec=client.V1SubjectAccessReviewSpec(
                user=f"system:serviceaccount:{ns}:drill-probe",
                resource_attributes=client.V1ResourceAttributes(namespace=ns, verb="delete", group="", resource="pods"),
            )
        )
    )
    assert review.status.allowed is False
