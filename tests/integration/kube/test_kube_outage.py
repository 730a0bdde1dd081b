"""The API server goes away during a run: the kube-apiserver process of the test control plane is stopped
(``cluster.sh stop-apiserver``; etcd, the controllers and kwok keep running) and started again 10 s later
(``cluster.sh start-apiserver``, which waits for /readyz). No object may be lost: the run ends with every object
equal to its snapshot and no marker left.

1. held at ``restoring`` (before the first restore): the restore retries with backoff and succeeds once the
   server is back; the run ends restored, exit 0.
2. held at ``responding``: the heartbeat's Lease renewals fail during the outage; the run still holds the Lease
   once the server is back (a second run is refused), then resolves and restores, exit 0.
3. held at ``suspending`` (the first pause: objects claimed, one suspended and not yet read back), resumed
   during the outage: the run aborts and restores what it claimed (exit 4), or suspends the rest and completes
   (exit 0); both are accepted, and which one is printed.

The outage is held for a measured 10 s: that interval is the fault under test, not a wait for a condition.
The ``apiserver`` fixture always starts the server again and waits until the cluster is healthy (other tests
share it), whatever the test did.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.conftest import journal_rows, wait_for
from tests.integration.kube import drillkit
from tests.integration.kube.conftest import CLUSTER_SH, KubeCluster, deployment
from tests.integration.kube.drillkit import lease, renewed_at

pytestmark = pytest.mark.kube

OUTAGE_S = 10.0
LEASE = "drill-lock"
LEASE_S = 30.0  # orchestrator.targets.kubernetes.LEASE_S
AUTO = "ack=0.1s,mitigate=0.2s,resolve=0.3s"
OBJECTS = ("HorizontalPodAutoscaler/web", "CronJob/web-restarter-0", "CronJob/web-restarter-1")
"""drillkit's units in the order they are suspended (restores go in reverse)."""
RESOURCE = {"HorizontalPodAutoscaler": "horizontalpodautoscalers", "CronJob": "cronjobs"}
POLICY = {"HorizontalPodAutoscaler": "web-hpa", "CronJob": "remediation-jobs"}
UNIT_API = {"HorizontalPodAutoscaler": "autoscaling/v2", "CronJob": "batch/v1"}


def unit(ns: str, obj: str) -> str:
    kind, name = obj.split("/")
    return f"{POLICY[kind]}:{UNIT_API[kind]}:{kind}:{ns}/{name}"


# -- the API server -----------------------------------------------------------------------------------------


class ApiServer:
    """Stops and starts the kube-apiserver of the test control plane, timing both."""

    def __init__(self, cluster: KubeCluster) -> None:
        url = urlparse(cluster.server)
        self.address = (url.hostname or "127.0.0.1", url.port or 443)
        self.down = False
        self.stop_sent_at = 0.0  # wall clock: the outage starts here (it stops listening on SIGTERM)
        self.stopped_at = 0.0  # monotonic, once the process is gone
        self.start_sent_at = 0.0  # wall clock, when start-apiserver was called
        self.back_at = 0.0  # wall clock, once /readyz answered ok
        self.back_mono = 0.0

    def _cluster_sh(self, command: str, timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(CLUSTER_SH), command], capture_output=True, text=True, timeout=timeout, check=False
        )

    def listening(self) -> bool:
        try:
            with socket.create_connection(self.address, timeout=1):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        self.stop_sent_at = time.time()
        self.down = True
        proc = self._cluster_sh("stop-apiserver", 60)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        self.stopped_at = time.monotonic()
        assert not self.listening(), f"the API server still accepts connections on {self.address}"

    def start(self) -> None:
        self.start_sent_at = time.time()
        proc = self._cluster_sh("start-apiserver", 180)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        self.down = False
        self.back_at, self.back_mono = time.time(), time.monotonic()

    def describe(self, run: Run) -> str:
        """How long the server was down and when the run ended, relative to its return."""
        start_took = self.back_at - self.start_sent_at
        ready_to_end = run.ended_at - self.back_mono
        return (
            f"API server down {self.start_sent_at - self.stop_sent_at:.1f}s (+{start_took:.1f}s from start to "
            f"/readyz); the run ended {start_took + ready_to_end:.1f}s after the start, i.e. {ready_to_end:+.1f}s "
            "from /readyz"
        )

    def hold_down(self, seconds: float, *, while_down: Callable[[], object] = lambda: None) -> None:
        """Keep the server stopped ``seconds`` after its process went away (a measured interval: the fault under
        test), calling ``while_down`` a few times a second (e.g. to check the run did not give up)."""
        deadline = self.stopped_at + seconds
        tick = threading.Event()  # never set: only its bounded wait paces the checks
        while (left := deadline - time.monotonic()) > 0:
            while_down()
            assert not self.listening(), "the API server came back on its own during the outage"
            tick.wait(min(0.25, left))

    def healthy(self) -> bool:
        return self._cluster_sh("status", 60).returncode == 0


def controllers_caught_up(cluster: KubeCluster) -> None:
    """The control plane works again for the next test: a new namespace gets its default ServiceAccount and a
    Deployment there becomes available (controllers, scheduler, kwok). Right after the restart their watches
    were refused with 403 (RBAC is not synced yet when the server starts listening) and backed off."""
    with cluster.api_client() as api:
        core = client.CoreV1Api(api)
        name = f"outage-canary-{uuid.uuid4().hex[:6]}"
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={"drill-test": "1"})))
        try:

            def has_default_sa() -> bool:
                try:
                    core.read_namespaced_service_account("default", name)
                except ApiException as exc:
                    if exc.status == 404:
                        return False
                    raise
                return True

            what = f"ServiceAccount {name}/default after the outage"
            wait_for(has_default_sa, timeout_s=120, what=what, interval_s=0.5)
            client.AppsV1Api(api).create_namespaced_deployment(name, deployment("web", 1))
            what = f"Deployment {name}/web available after the outage"
            wait_for(lambda: drillkit.web_available(api, name), timeout_s=120, what=what, interval_s=0.5)
        finally:
            core.delete_namespace(name, propagation_policy="Background")


@pytest.fixture
def apiserver(kube_cluster: KubeCluster, kube_namespace: str) -> Iterator[ApiServer]:
    """Stop/start the API server; it is ALWAYS started again afterwards and the cluster works again (nodes Ready,
    controllers caught up) before the next fixture's teardown (the namespace's deletion) or test."""
    del kube_namespace  # requested so that this teardown (server back) runs before the namespace is deleted
    server = ApiServer(kube_cluster)
    try:
        yield server
    finally:
        if server.down or not server.listening():
            server.start()
        wait_for(server.healthy, timeout_s=90, what="the test cluster healthy again after the outage", interval_s=0.5)
        controllers_caught_up(kube_cluster)


# -- the run ----------------------------------------------------------------------------------------------


@dataclass
class Run(drillkit.Run):
    """drillkit's run, and the moment its process ended (set by a watcher thread)."""

    ended_at: float = 0.0  # monotonic

    def __post_init__(self) -> None:
        def watch() -> None:
            self.proc.wait()
            self.ended_at = time.monotonic()

        threading.Thread(target=watch, daemon=True).start()

    def wait(self, timeout: float) -> int:
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"drill run did not end within {timeout}s of the API server's return:\n{self.output()}")
        wait_for(lambda: self.ended_at, timeout_s=5, what="the watcher to note the run's end")
        return rc


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Run]]:
    """Start `drill run DRILL` (own drill home ``<tmp>/<name>/``); a run still alive after the test is killed."""
    with drillkit.runs(tmp_path, auto=AUTO, kind=Run) as start:
        yield start


@pytest.fixture
def app(kube_api: client.ApiClient, kube_namespace: str, kube_wait: Callable[..., Any]) -> dict[str, Any]:
    """drillkit's shop (web available); the snapshot a restore must give back."""
    drillkit.make_app(kube_api, kube_namespace, cronjobs=2)
    kube_wait(lambda: drillkit.web_available(kube_api, kube_namespace), timeout=60, what="web available")
    state = drillkit.objects_state(kube_api, kube_namespace)
    assert sorted(state) == sorted(OBJECTS)
    return state


def restore_events(home: Path, run_id: str) -> dict[str, tuple[float, float | None, str]]:
    """The journal's ``restore`` events of the run, by policy: (at, duration_s, actual)."""
    rows = journal_rows(
        home,
        "SELECT at, duration_s, actual, data FROM events WHERE run_id = ? AND name = 'restore' ORDER BY seq",
        run_id,
    )
    return {
        json.loads(str(data))["policy"]: (float(str(at)), None if dur is None else float(str(dur)), str(actual))
        for at, dur, actual, data in rows
    }


def restore_patches(cluster: KubeCluster, ns: str, obj: str, *, since: float) -> list[dict[str, Any]]:
    """The audit log's patches (not dry runs) of ``obj`` received after ``since`` (wall clock)."""
    kind, name = obj.split("/")
    found = []
    for event in cluster.audit_events(namespace=ns):
        ref = event.get("objectRef", {})
        if event["verb"] != "patch" or ref.get("resource") != RESOURCE[kind] or ref.get("name") != name:
            continue
        if "dryRun=All" in event["requestURI"]:
            continue
        received = datetime.fromisoformat(event["requestReceivedTimestamp"].replace("Z", "+00:00")).timestamp()
        if received >= since:
            found.append(event)
    return found


def assert_all_restored(api: client.ApiClient, ns: str, before: dict[str, Any], run: Run, run_id: str) -> None:
    assert drillkit.objects_state(api, ns) == before, run.output()
    assert drillkit.marked_objects(api, ns) == [], run.output()
    states = journal_rows(run.env.home, "SELECT policy, state FROM suspensions WHERE run_id = ?", run_id)
    assert {state for _, state in states} == {"restored"}, states


# -- 1. down during the restore ------------------------------------------------------------------------------


def test_apiserver_down_during_restore_the_run_ends_restored(
    *,
    kube_cluster: KubeCluster,
    kube_api: client.ApiClient,
    kube_namespace: str,
    app: dict[str, Any],
    spawn: Callable[..., Run],
    apiserver: ApiServer,
    tmp_path: Path,
) -> None:
    ns, before = kube_namespace, app
    drill = drillkit.write_drill(tmp_path / "drill", ns, kube_cluster.kubeconfig)
    run = spawn(drill, "run", pause="restoring")
    run_id = run.paused_at("restoring")  # before the first restore (of the last object suspended)
    assert drillkit.marked_objects(kube_api, ns) == sorted(OBJECTS)

    apiserver.stop()
    run.resume(run_id, "restoring")
    apiserver.hold_down(OUTAGE_S, while_down=run.alive)  # the run keeps retrying; it must not give up
    apiserver.start()
    rc = run.wait(timeout=120)
    print(f"\n[outage during restore] {apiserver.describe(run)}")

    assert rc == 0, run.output()
    assert_all_restored(kube_api, ns, before, run, run_id)
    [(state, outcome)] = journal_rows(run.env.home, "SELECT state, outcome FROM runs WHERE run_id = ?", run_id)
    assert state == "done" and outcome != "aborted", (state, outcome)
    restores = restore_events(run.env.home, run_id)
    assert set(restores) == {unit(ns, o) for o in OBJECTS}, restores
    first = OBJECTS[-1]
    at, duration, actual = restores[unit(ns, first)]
    print(f"[outage during restore] first restore journaled {duration:.1f}s after its intent: {actual}")
    assert actual.startswith("verified: "), actual
    # It succeeded after the outage: the restore went on retrying through it (the retries themselves are not
    # journaled; the duration from intent to verified restore spans the outage).
    assert at >= apiserver.start_sent_at, (at, apiserver.start_sent_at)
    assert duration is not None and duration >= OUTAGE_S, duration
    for obj in OBJECTS:  # exactly one restore patch per object, each after the outage began, none refused
        patches = restore_patches(kube_cluster, ns, obj, since=apiserver.stop_sent_at)
        assert [e["responseStatus"]["code"] for e in patches] == [200], (obj, patches)


# -- 2. down while responding: the Lease --------------------------------------------------------------------


def test_apiserver_down_while_responding_keeps_the_lease(
    *,
    kube_cluster: KubeCluster,
    kube_api: client.ApiClient,
    kube_namespace: str,
    app: dict[str, Any],
    spawn: Callable[..., Run],
    apiserver: ApiServer,
    tmp_path: Path,
) -> None:
    ns, before = kube_namespace, app
    drill = drillkit.write_drill(tmp_path / "drill", ns, kube_cluster.kubeconfig)
    run = spawn(drill, "run", pause="responding")
    run_id = run.paused_at("responding")
    held = lease(kube_api, ns)
    assert held is not None and held["holderIdentity"] == run_id
    last_renewal = renewed_at(held)

    apiserver.stop()
    apiserver.hold_down(OUTAGE_S, while_down=run.alive)  # heartbeats' renewals fail meanwhile
    apiserver.start()

    # The Lease outlived the outage (renewed before it, LEASE_S long) and the heartbeat renews it again
    # once the server is back, well within the Lease's duration.
    def renewed_since_back() -> dict[str, Any] | None:
        spec = lease(kube_api, ns)
        assert spec is not None and spec["holderIdentity"] == run_id, spec
        return spec if renewed_at(spec) >= apiserver.back_at - 1 else None

    spec = wait_for(renewed_since_back, timeout_s=LEASE_S, what="the run to renew its Lease after the outage")
    assert isinstance(spec, dict)
    gap = renewed_at(spec) - last_renewal
    print(f"\n[outage while responding] Lease renewed {gap:.1f}s after the last renewal before the outage")
    assert gap < LEASE_S, (
        f"the Lease went unrenewed {gap:.1f}s, longer than its {LEASE_S:g}s: another run could take it"
    )

    # Nobody else gets in: a second run is refused by the Lease (nothing changed).
    second = spawn(drill, "second")
    assert second.wait(timeout=120) == 2, second.output()
    assert f"run {run_id} holds the Lease {ns}/{LEASE}" in second.err.read_text(encoding="utf-8"), second.output()

    run.resume(run_id, "responding")
    assert run.wait(timeout=120) == 0, run.output()
    assert_all_restored(kube_api, ns, before, run, run_id)
    assert lease(kube_api, ns) is None  # released at the end


# -- 3. down while suspending --------------------------------------------------------------------------------


def test_apiserver_down_while_suspending_restores_every_object(
    *,
    kube_cluster: KubeCluster,
    kube_api: client.ApiClient,
    kube_namespace: str,
    app: dict[str, Any],
    spawn: Callable[..., Run],
    apiserver: ApiServer,
    tmp_path: Path,
) -> None:
    ns, before = kube_namespace, app
    drill = drillkit.write_drill(tmp_path / "drill", ns, kube_cluster.kubeconfig)
    run = spawn(drill, "run", pause="suspending")
    # Held at the first pause: an object claimed and suspended, not yet read back. Claims go in batches (up to
    # the target's concurrency x 8 objects): with drillkit's three objects, all three are claimed by then.
    run_id = run.paused_at("suspending")
    claimed = drillkit.marked_objects(kube_api, ns)
    assert claimed, "held at suspending with nothing claimed"

    apiserver.stop()
    run.resume(run_id, "suspending")
    apiserver.hold_down(OUTAGE_S, while_down=run.alive)  # it must not end before its claimed object is back
    apiserver.start()
    rc = run.wait(timeout=120)

    assert drillkit.objects_state(kube_api, ns) == before, run.output()
    assert drillkit.marked_objects(kube_api, ns) == [], run.output()
    [(state, outcome)] = journal_rows(run.env.home, "SELECT state, outcome FROM runs WHERE run_id = ?", run_id)
    suspensions = {
        str(p): str(st)
        for p, st in journal_rows(run.env.home, "SELECT policy, state FROM suspensions WHERE run_id = ?", run_id)
    }
    aborted = journal_rows(
        run.env.home, "SELECT data FROM events WHERE run_id = ? AND name = 'aborted' ORDER BY seq", run_id
    )
    reason = json.loads(str(aborted[0][0])).get("reason", "") if aborted else ""
    print(
        f"\n[outage while suspending] claimed when held: {claimed}; exit {rc}, run {state}/{outcome}; "
        f"{apiserver.describe(run)}; suspensions {suspensions}; abort reason: {reason!r}"
    )
    assert state == "done", run.output()
    if rc == 0:  # it rode out the outage: suspended the rest, completed, restored all
        assert outcome != "aborted" and suspensions == {unit(ns, o): "restored" for o in OBJECTS}, run.output()
    else:  # it aborted on the outage and restored what it had claimed: "aborted, automation restored"
        assert rc == 4 and outcome == "aborted", run.output()
        restored = {p for p, st in suspensions.items() if st == "restored"}
        assert restored == {unit(ns, o) for o in claimed}, suspensions
        assert all(st in {"restored", "not-claimed"} for st in suspensions.values()), suspensions
        assert "cannot be reached" in reason or "did not answer" in reason, reason
