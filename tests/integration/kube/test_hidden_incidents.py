"""Hidden incidents on the real control plane: a Deployment whose pods keep being deleted (and replaced by
its ReplicaSet) is at the top of the report and flagged over the threshold; a quiet one is not listed."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import client

from orchestrator import errors
from orchestrator.adapters import kubeevents
from orchestrator.archive import incidents
from orchestrator.cli import incidents as cli_incidents
from tests.integration.kube.conftest import KubeCluster, deployment

pytestmark = pytest.mark.kube

DELETIONS = 5


def live_pods(core: client.CoreV1Api, ns: str, app: str) -> list[client.V1Pod]:
    """Pods of ``app`` that are Running, Ready and not terminating."""
    return [
        p
        for p in core.list_namespaced_pod(ns, label_selector=f"app={app}").items
        if p.metadata.deletion_timestamp is None
        and p.status.phase == "Running"
        and any(c.type == "Ready" and c.status == "True" for c in (p.status.conditions or []))
    ]


def test_repeatedly_replaced_deployment_is_top_and_flagged_quiet_one_not_listed(
    kube_cluster: KubeCluster,
    kube_api: client.ApiClient,
    kube_namespace: str,
    kube_wait: Callable[..., Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    apps = client.AppsV1Api(kube_api)
    core = client.CoreV1Api(kube_api)
    ns = kube_namespace
    start = time.time()
    apps.create_namespaced_deployment(ns, deployment("flappy", 1))
    apps.create_namespaced_deployment(ns, deployment("quiet", 2))
    kube_wait(lambda: len(live_pods(core, ns, "quiet")) == 2, timeout=90, what="2 Ready pods of quiet")
    current = kube_wait(lambda: (p := live_pods(core, ns, "flappy")) and len(p) == 1 and p, timeout=90, what="flappy")

    deleted: list[str] = []
    for i in range(DELETIONS):
        victim = current[0].metadata.name
        core.delete_namespaced_pod(victim, ns)
        deleted.append(victim)
        current = kube_wait(
            lambda v=victim: (p := live_pods(core, ns, "flappy")) and len(p) == 1 and p[0].metadata.name != v and p,
            timeout=90,
            what=f"the ReplicaSet to replace deleted pod {victim} ({i + 1}/{DELETIONS})",
        )
        kube_wait(
            lambda v=victim: v not in {p.metadata.name for p in core.list_namespaced_pod(ns).items},
            timeout=60,
            what=f"pod {victim} to disappear",
        )

    # the ReplicaSet's SuccessfulCreate events for all six creations are visible before the report is taken
    def creation_events() -> bool:
        # raw JSON: the typed client model refuses legacy events (eventTime null)
        raw = client.EventsV1Api(kube_api).list_namespaced_event(ns, _preload_content=False)
        evs = json.loads(raw.data)["items"]
        created = [e for e in evs if e.get("reason") == "SuccessfulCreate"]
        return sum(1 for e in created if (e.get("note") or "").startswith("Created pod: flappy")) == DELETIONS + 1

    kube_wait(creation_events, timeout=60, what=f"{DELETIONS + 1} SuccessfulCreate events of flappy's ReplicaSet")

    observations = kubeevents.observe(kube_api, [ns])
    until = time.time()
    report = incidents.build(observations, since=until - 3600, until=until, namespaces=[ns])

    top = report.services[0]
    assert top.service == f"{ns}/Deployment/flappy"
    assert top.rank == 1
    assert top.by_kind == {"pod_replaced": DELETIONS}
    assert top.recoveries == DELETIONS
    assert top.peak == DELETIONS
    assert top.flagged and top.why and "may hide an incident" in top.why
    assert report.flagged == [f"{ns}/Deployment/flappy"]
    # the replacements are the five pods created after a deletion: every pod but the first (the rollout)
    assert top.examples == sorted(f"Pod/{n}" for n in [*deleted[1:], current[0].metadata.name])
    assert all(s.name != "quiet" for s in report.services), report.services
    assert report.services_with_recoveries == 1
    assert sum(b.count for b in top.buckets) == DELETIONS
    assert top.last_seen is not None
    assert start - 5 <= datetime.fromisoformat(top.last_seen).timestamp() <= until + 1

    # the same through the CLI handler, as `drill report incidents ... --json` (exit 1: something is flagged)
    parser = argparse.ArgumentParser()
    cli_incidents.add_arguments(parser)
    args = parser.parse_args(
        ["--kubeconfig", str(kube_cluster.kubeconfig), "--namespace", ns, "--since", "1h", "--threshold", "3", "--json"]
    )
    assert cli_incidents.report(args) == 1
    doc = incidents.load(json.loads(capsys.readouterr().out))
    assert doc.schema_version == incidents.SCHEMA_VERSION
    assert doc.services[0].service == f"{ns}/Deployment/flappy" and doc.services[0].flagged
    assert "pod_replaced" in doc.definitions and doc.threshold.max_per_period == 3
    assert all(s.name != "quiet" for s in doc.services)

    # a higher threshold: listed first, not flagged, exit 0
    args = parser.parse_args(["--kubeconfig", str(kube_cluster.kubeconfig), "-n", ns, "--threshold", "5"])
    assert cli_incidents.report(args) == 0
    text = capsys.readouterr().out
    assert f"{ns}/Deployment/flappy" in text and "FLAG" not in text


def test_a_refused_read_is_a_target_error(kube_cluster: KubeCluster, kube_namespace: str) -> None:
    with (
        kube_cluster.api_client(token="not-a-valid-token") as api,
        pytest.raises(errors.TargetError, match="401") as info,
    ):
        kubeevents.observe(api, [kube_namespace])
    assert info.value.__cause__ is not None


def _event(ns: str, name: str, *, regarding: dict[str, str], reason: str, note: str, count: int) -> dict[str, Any]:
    """An events.k8s.io/v1 Event as a controller or operator would record it (``count`` > 1: a series)."""
    now = datetime.now(UTC)
    body: dict[str, Any] = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": ns},
        "eventTime": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "reportingController": "drill-test/controller",
        "reportingInstance": "drill-test-0",
        "action": "Recover",
        "reason": reason,
        "note": note,
        "type": "Normal",
        "regarding": {"namespace": ns, **regarding},
    }
    if count > 1:
        body["series"] = {"count": count, "lastObservedTime": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
    return body


def test_restarts_autoscaler_and_operator_reactions_are_attributed_to_their_service(
    kube_api: client.ApiClient, kube_namespace: str, kube_wait: Callable[..., Any]
) -> None:
    apps = client.AppsV1Api(kube_api)
    core = client.CoreV1Api(kube_api)
    ns = kube_namespace
    apps.create_namespaced_deployment(ns, deployment("crashy", 1))
    (pod,) = kube_wait(lambda: (p := live_pods(core, ns, "crashy")) and len(p) == 1 and p, timeout=90, what="crashy")
    name = pod.metadata.name
    # what a kubelet reports after the 4th restart of a crashing container (kwok runs no containers)
    finished = datetime.now(UTC).replace(microsecond=0)
    status = {
        "status": {
            "containerStatuses": [
                {
                    "name": "app",
                    "image": "registry.invalid/crashy:1",
                    "imageID": "",
                    "ready": True,
                    "restartCount": 4,
                    "lastState": {
                        "terminated": {
                            "exitCode": 1,
                            "reason": "Error",
                            "startedAt": finished.strftime("%Y-%m-%dT%H:%M:%SZ"),
                            "finishedAt": finished.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        }
                    },
                    "state": {"running": {"startedAt": finished.strftime("%Y-%m-%dT%H:%M:%SZ")}},
                }
            ]
        }
    }
    core.patch_namespaced_pod_status(name, ns, status, _content_type="application/strategic-merge-patch+json")
    kube_wait(
        lambda: (core.read_namespaced_pod(name, ns).status.container_statuses or [None])[0].restart_count == 4,
        timeout=30,
        what="restartCount 4 on the pod's status",
    )
    client.AutoscalingV1Api(kube_api).create_namespaced_horizontal_pod_autoscaler(
        ns,
        client.V1HorizontalPodAutoscaler(
            metadata=client.V1ObjectMeta(name="crashy-hpa"),
            spec=client.V1HorizontalPodAutoscalerSpec(
                scale_target_ref=client.V1CrossVersionObjectReference(
                    api_version="apps/v1", kind="Deployment", name="crashy"
                ),
                min_replicas=1,
                max_replicas=3,
            ),
        ),
    )
    custom = client.CustomObjectsApi(kube_api)
    custom.create_namespaced_custom_object(
        "argoproj.io",
        "v1alpha1",
        ns,
        "applications",
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": {"name": "shop"},
            "spec": {
                "project": "default",
                "destination": {"server": "https://kubernetes.default.svc", "namespace": ns},
            },
        },
    )
    events = client.EventsV1Api(kube_api)
    hpa_ref = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "name": "crashy-hpa"}
    pod_ref = {"apiVersion": "v1", "kind": "Pod", "name": name}
    app_ref = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "name": "shop"}
    for body in (
        _event(ns, "rescale", regarding=hpa_ref, reason="SuccessfulRescale", note="New size: 2", count=2),
        _event(ns, "sync", regarding=app_ref, reason="OperationStarted", note="automated sync", count=1),
        # not a configured operator reason: ignored
        _event(ns, "noise", regarding=app_ref, reason="ResourceUpdated", note="Updated", count=1),
        # kubelet's back-off on the crashing container: shown as evidence, never counted again
        _event(ns, "backoff", regarding=pod_ref, reason="BackOff", note="Back-off restarting", count=3),
    ):
        events.create_namespaced_event(ns, body, _preload_content=False)

    until = time.time()
    report = incidents.build(kubeevents.observe(kube_api, [ns]), since=until - 3600, until=until)
    rows = {r.service: r for r in report.services}
    crashy = rows[f"{ns}/Deployment/crashy"]
    # 4 restarts (the latest at lastState.terminated.finishedAt, 3 spread before it) + a 2-count rescale series
    assert crashy.by_kind == {"container_restart": 4, "autoscaler_rescale": 2}
    assert crashy.recoveries == 6 and crashy.flagged and crashy.rank == 1
    assert rows[f"{ns}/Application/shop"].by_kind == {"operator_reaction": 1}
    assert not rows[f"{ns}/Application/shop"].flagged
    assert set(rows) == {f"{ns}/Deployment/crashy", f"{ns}/Application/shop"}
    assert crashy.evidence == {"BackOff": 3}

    # the whole cluster (every namespace) sees the same rows for this namespace
    everywhere = incidents.build(kubeevents.observe(kube_api, None), since=until - 3600, until=until, top=1000)
    mine = {r.service: r.by_kind for r in everywhere.services if r.namespace == ns}
    assert mine == {s: r.by_kind for s, r in rows.items()}
