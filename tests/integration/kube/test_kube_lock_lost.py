"""A run that loses its target lock (its Lease deleted, or taken by another holder) aborts and restores.

The Lease is what keeps a second run, from another machine and journal, off the namespace; a run that kept
going without it would no longer be exclusive. The heartbeat notices at its next renewal.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.conftest import DrillEnv, paused_run
from tests.integration.kube import drillkit
from tests.integration.kube.conftest import KubeCluster

pytestmark = pytest.mark.kube


@pytest.mark.parametrize("how", ["deleted", "taken"])
def test_a_lost_lease_aborts_the_run_and_restores_everything(  # noqa: PLR0917 (pytest fixtures)
    how: str,
    kube_cluster: KubeCluster,
    kube_api: client.ApiClient,
    kube_namespace: str,
    kube_wait: Callable[..., Any],
    drill_env: DrillEnv,
    tmp_path: Path,
) -> None:
    ns = kube_namespace
    drillkit.make_app(kube_api, ns)
    kube_wait(lambda: drillkit.web_available(kube_api, ns), timeout=60, what="web available")
    before = drillkit.objects_state(kube_api, ns)
    drill = drillkit.write_drill(tmp_path, ns, kube_cluster.kubeconfig)
    proc, run_id = paused_run(drill_env, "responding", "ack=1s", drill=drill, capture_stdout=True)
    try:
        leases = client.CoordinationV1Api(kube_api)
        assert leases.read_namespaced_lease("drill-lock", ns).spec.holder_identity == run_id
        if how == "deleted":
            leases.delete_namespaced_lease("drill-lock", ns)
        else:
            leases.patch_namespaced_lease("drill-lock", ns, {"spec": {"holderIdentity": "someone-else"}})
        (drill_env.hooks_dir / f"{run_id}.responding.resume").touch()
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
    assert proc.returncode == 4, out + err  # aborted, automation restored
    assert "target lock lost" in err and "drill-lock" in err, err
    assert drillkit.objects_state(kube_api, ns) == before
    assert drillkit.marked_objects(kube_api, ns) == []
