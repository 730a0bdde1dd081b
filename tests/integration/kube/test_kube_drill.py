"""A whole no-automation drill on Kubernetes through `drill run`: suspend, fault by chaosk8s, respond, restore."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.conftest import DrillEnv, read_report, reported_dir
from tests.integration.kube import drillkit
from tests.integration.kube.conftest import KubeCluster

pytestmark = pytest.mark.kube


def test_no_automation_drill_restores_every_object_exactly(  # noqa: PLR0917 (pytest fixtures)
    kube_cluster: KubeCluster,
    kube_api: client.ApiClient,
    kube_namespace: str,
    kube_wait: Callable[..., Any],
    drill_env: DrillEnv,
    run_drill: Callable[..., Any],
    tmp_path: Path,
) -> None:
    ns = kube_namespace
    drillkit.make_app(kube_api, ns, cronjobs=2)
    kube_wait(lambda: drillkit.web_available(kube_api, ns), timeout=60, what="web available")
    before = drillkit.objects_state(kube_api, ns)
    drill = drillkit.write_drill(tmp_path, ns, kube_cluster.kubeconfig)

    done = run_drill("run", str(drill), "--plain", "--auto-respond", "ack=1s,diagnose=2s,mitigate=3s,resolve=6s")

    assert done.returncode == 0, done.stdout + done.stderr
    report = read_report(reported_dir(done.stdout))
    suspended = {p["name"] for p in report["policies"]}  # type: ignore[index,union-attr]
    assert suspended == {
        f"web-hpa:autoscaling/v2:HorizontalPodAutoscaler:{ns}/web",
        f"remediation-jobs:batch/v1:CronJob:{ns}/web-restarter-0",
        f"remediation-jobs:batch/v1:CronJob:{ns}/web-restarter-1",
    }
    assert drillkit.objects_state(kube_api, ns) == before
    assert drillkit.marked_objects(kube_api, ns) == []
    assert drillkit.web_available(kube_api, ns) or kube_wait(
        lambda: drillkit.web_available(kube_api, ns), timeout=60, what="web back after the rollback"
    )
