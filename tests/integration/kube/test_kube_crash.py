"""SIGKILL `drill run` on the real control plane while objects are suspended; two runs racing for one target.

The markers on the objects are enough to restore them: `drill restore --expired --kubeconfig` from another
directory with an empty drill home (no journal of the run) leaves them alone before their deadline and puts
every one back after it, while the dead run's Lease is still there. With the run's own journal, `drill restore
RUN` restores at once (its process is dead). The target's Lease arbitrates between runs with separate journals;
a dead holder's Lease expires, and then the markers it left still refuse a new run until `drill restore`.

The run is held at a step by the test pause hook (``DRILL_TEST_PAUSE_AT``). The ``suspending`` and
``restoring`` steps pause once per object, all under one pause file name; to hold the run at the n-th pause,
the pause file becomes a FIFO after the first one: the run blocks opening it at each later pause until the test
reads it, so the test lets the pauses go one at a time and removes the resume file only once the cluster shows
the run went past the previous pause (the next object claimed, or the last one restored).
"""

from __future__ import annotations

import json
import os
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from orchestrator.policies import base as policy_base
from tests.conftest import DrillEnv, journal_rows, wait_for
from tests.integration.kube import drillkit
from tests.integration.kube.conftest import KubeCluster
from tests.integration.kube.drillkit import Run, audit_ids, lease, renewed_at, unit

pytestmark = pytest.mark.kube

LEASE = "drill-lock"
AUTO = "ack=0.1s,mitigate=0.2s,resolve=0.3s"
MAX_DURATION_S = 300.0  # drillkit.write_drill's default maxDuration: 5m
GRACE_S = 120.0  # settings.Timing.restore_grace_s
OBJECTS = ("HorizontalPodAutoscaler/web", "CronJob/web-restarter-0", "CronJob/web-restarter-1")
"""The units of drillkit's drill in the order they are suspended (restores go in reverse)."""
POLICY_KIND = {"HorizontalPodAutoscaler": "hpa", "CronJob": "cronjob"}
RESOURCE = {"HorizontalPodAutoscaler": "horizontalpodautoscalers", "CronJob": "cronjobs"}
MARKER_PTR = "/metadata/annotations/" + policy_base.MARKER_KEY.replace("~", "~0").replace("/", "~1")
RESTORED_FROM_MARKER = "restored and verified from its marker: "


# -- processes -----------------------------------------------------------------------------------------------


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Run]]:
    """Start `drill run DRILL` with its own drill home ``<tmp>/<name>/``; every run left is SIGKILLed after the test."""
    with drillkit.runs(tmp_path, auto=AUTO, kind=Run) as start:
        yield start


def let_pause_announce(run: Run, fifo: Path) -> None:
    """Read the FIFO pause file once: the run, blocked opening it at its next pause, writes its pid and goes on."""
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        deadline = time.monotonic() + 60
        data = b""
        while True:
            run.alive()
            assert time.monotonic() < deadline, f"drill run did not reach its next pause at {fifo.name}"
            readable, _, _ = select.select([fd], [], [], 0.25)  # readable once a writer came (data, then EOF)
            if readable:
                chunk = os.read(fd, 64)
                if not chunk:
                    break
                data += chunk
        assert data.strip() == str(run.proc.pid).encode(), data
    finally:
        os.close(fd)


def hold_at(run: Run, step: str, nth: int = 1, *, went_past: Callable[[int], bool] | None = None) -> str:
    """Hold ``run`` at the ``nth`` pause of ``step``; returns its run id.

    ``went_past(k)``: the cluster shows the run went on after its k-th pause (needed when ``nth`` > 1).
    """
    paused = wait_for(lambda: run.alive() and run.paused_file(step), timeout_s=60, what=f"drill run to pause at {step}")
    assert isinstance(paused, Path)
    run_id = paused.name.removesuffix(f".{step}.paused")
    if nth > 1:
        assert went_past is not None
        resume = run.env.hooks_dir / f"{run_id}.{step}.resume"
        paused.unlink()
        os.mkfifo(paused)  # from now on, each pause blocks opening it until the test reads it
        resume.touch()
        for k in range(2, nth + 1):

            def gone_on(k: int = k, went_past: Callable[[int], bool] = went_past) -> bool:
                return run.alive() and went_past(k - 1)

            wait_for(gone_on, timeout_s=60, what=f"drill run to go past pause {k - 1} at {step}")
            if k == nth:
                resume.unlink()  # the run is past pause k-1 and not yet at pause k: it stops there
            let_pause_announce(run, paused)
    return run_id


# -- the cluster ---------------------------------------------------------------------------------------------


def read_object(api: client.ApiClient, ns: str, obj: str) -> dict[str, Any]:
    kind, name = obj.split("/")
    resp: Any
    if kind == "HorizontalPodAutoscaler":
        resp = client.AutoscalingV2Api(api).read_namespaced_horizontal_pod_autoscaler(name, ns, _preload_content=False)
    else:
        resp = client.BatchV1Api(api).read_namespaced_cron_job(name, ns, _preload_content=False)
    data: dict[str, Any] = json.loads(resp.data)
    return data


def marker_of(api: client.ApiClient, ns: str, obj: str) -> policy_base.Marker | None:
    text = (read_object(api, ns, obj)["metadata"].get("annotations") or {}).get(policy_base.MARKER_KEY)
    return policy_base.Marker.from_json(text) if text else None


def json_patch(api: client.ApiClient, ns: str, obj: str, ops: list[dict[str, Any]]) -> None:
    kind, name = obj.split("/")
    if kind == "HorizontalPodAutoscaler":
        client.AutoscalingV2Api(api).patch_namespaced_horizontal_pod_autoscaler(name, ns, ops)
    else:
        client.BatchV1Api(api).patch_namespaced_cron_job(name, ns, ops)


def expire_markers(api: client.ApiClient, ns: str) -> None:
    """As the admin, move the ``deadline_at`` of every marker in ``ns`` a minute into the past."""
    for obj in drillkit.marked_objects(api, ns):
        text = read_object(api, ns, obj)["metadata"]["annotations"][policy_base.MARKER_KEY]
        data = json.loads(text)
        data["deadline_at"] = time.time() - 60
        json_patch(
            api,
            ns,
            obj,
            [
                {"op": "test", "path": MARKER_PTR, "value": text},
                {"op": "replace", "path": MARKER_PTR, "value": json.dumps(data, sort_keys=True)},
            ],
        )


def lease_free_at(spec: dict[str, Any]) -> float:
    return renewed_at(spec) + float(spec["leaseDurationSeconds"])


def object_patches(cluster: KubeCluster, ns: str, *, after: set[str]) -> dict[str, list[dict[str, Any]]]:
    """Patches of the HPA and the CronJobs of ``ns`` (audit events not in ``after``), by object."""
    found: dict[str, list[dict[str, Any]]] = {obj: [] for obj in OBJECTS}
    resources = {v: k for k, v in RESOURCE.items()}
    for event in cluster.audit_events(namespace=ns):
        ref = event.get("objectRef", {})
        if event["verb"] != "patch" or event["auditID"] in after or ref.get("resource") not in resources:
            continue
        found.setdefault(f"{resources[ref['resource']]}/{ref.get('name')}", []).append(event)
    return found


@pytest.fixture
def app(kube_api: client.ApiClient, kube_namespace: str, kube_wait: Callable[..., Any]) -> dict[str, Any]:
    """drillkit's shop in the test's namespace (web available); returns the snapshot a restore must give back."""
    drillkit.make_app(kube_api, kube_namespace, cronjobs=2)
    kube_wait(lambda: drillkit.web_available(kube_api, kube_namespace), timeout=60, what="web available")
    state = drillkit.objects_state(kube_api, kube_namespace)
    assert sorted(state) == sorted(OBJECTS)
    return state


# -- 1. SIGKILL at each step; the markers alone restore, after the deadline ------------------------------------


@pytest.mark.parametrize(
    ("step", "nth", "left"),
    [
        pytest.param("suspending", 1, OBJECTS[:1], id="suspending-after-the-first"),
        pytest.param("suspending", 3, OBJECTS, id="suspending-after-the-last"),
        pytest.param("injecting", 1, OBJECTS, id="injecting"),
        pytest.param("responding", 1, OBJECTS, id="responding"),
        pytest.param("restoring", 3, OBJECTS[:1], id="restoring-after-two-restores"),
    ],
)
def test_sigkill_then_restore_expired_from_the_markers_alone(
    *,
    step: str,
    nth: int,
    left: tuple[str, ...],
    kube_cluster: KubeCluster,
    kube_api: client.ApiClient,
    kube_namespace: str,
    app: dict[str, Any],
    spawn: Callable[..., Run],
    tmp_path: Path,
) -> None:
    ns, before = kube_namespace, app
    # One object at a time, so the run can be stopped between two of them (a fan-out claims a batch together;
    # test_kube_fanout kills one in the middle of a concurrent batch).
    drill = drillkit.write_drill(tmp_path / "drill", ns, kube_cluster.kubeconfig, concurrency=1)

    def went_past(k: int) -> bool:
        if step == "suspending":
            return marker_of(kube_api, ns, OBJECTS[k]) is not None  # the next object is claimed
        return marker_of(kube_api, ns, OBJECTS[-k]) is None  # the k-th restore (in reverse order) is done

    run = spawn(drill, "run", pause=step)
    run_id = hold_at(run, step, nth, went_past=went_past)
    # Held where intended: exactly ``left`` carry this run's marker, with deadline = start + maxDuration + grace.
    assert drillkit.marked_objects(kube_api, ns) == sorted(left)
    [(created_at,)] = journal_rows(run.env.home, "SELECT created_at FROM runs WHERE run_id = ?", run_id)
    for obj in left:
        marker = marker_of(kube_api, ns, obj)
        assert marker is not None and marker.run_id == run_id and marker.policy == unit(ns, obj), marker
        assert marker.deadline_at == pytest.approx(float(created_at) + MAX_DURATION_S + GRACE_S, abs=1)  # type: ignore[arg-type]
    for obj in set(OBJECTS) - set(left):
        assert drillkit.objects_state(kube_api, ns)[obj] == before[obj]
    held = lease(kube_api, ns)
    assert held is not None and held["holderIdentity"] == run_id

    run.kill()
    during = drillkit.objects_state(kube_api, ns)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    empty = DrillEnv(home=tmp_path / "empty-home", archive=elsewhere / "archive")  # no journal of the run
    restore = ("restore", "--expired", "--kubeconfig", str(kube_cluster.kubeconfig))

    early = drillkit.cli(*restore, env=empty, cwd=elsewhere)
    assert early.returncode == 0, early.stdout + early.stderr
    ours = [line for line in early.stdout.splitlines() if f"{ns}/" in line]
    assert len(ours) == len(left), early.stdout
    for obj in left:
        assert any(
            line.startswith(f"left alone: {unit(ns, obj)} (")
            and f"of run {run_id} " in line
            and "deadline not reached" in line
            for line in ours
        ), early.stdout
    assert f"{ns}/" not in early.stderr, early.stderr
    assert drillkit.marked_objects(kube_api, ns) == sorted(left)
    assert drillkit.objects_state(kube_api, ns) == during

    expire_markers(kube_api, ns)
    held = lease(kube_api, ns)  # the dead run's Lease is still held: it must not block a restore
    assert held is not None and held["holderIdentity"] == run_id and lease_free_at(held) > time.time()

    late = drillkit.cli(*restore, env=empty, cwd=elsewhere)
    assert late.returncode == 0, late.stdout + late.stderr
    restored = [line for line in late.stdout.splitlines() if line.startswith(RESTORED_FROM_MARKER) and f"{ns}/" in line]
    assert len(restored) == len(left), late.stdout
    for obj in left:
        kind = POLICY_KIND[obj.split("/")[0]]
        assert any(
            line.startswith(f"{RESTORED_FROM_MARKER}{unit(ns, obj)} ({kind}) of run {run_id} on kubernetes:")
            for line in restored
        ), late.stdout
    assert drillkit.objects_state(kube_api, ns) == before
    assert drillkit.marked_objects(kube_api, ns) == []
    assert journal_rows(empty.home, "SELECT count(*) FROM runs") in ([], [(0,)])  # it never knew the run


# -- 2. SIGKILL at responding; `drill restore RUN` from the run's own journal restores at once -------------------


def test_sigkill_at_responding_then_restore_run_from_its_journal(
    *,
    kube_cluster: KubeCluster,
    kube_api: client.ApiClient,
    kube_namespace: str,
    kube_wait: Callable[..., Any],
    app: dict[str, Any],
    spawn: Callable[..., Run],
    tmp_path: Path,
) -> None:
    ns, before = kube_namespace, app
    drill = drillkit.write_drill(tmp_path / "drill", ns, kube_cluster.kubeconfig)
    run = spawn(drill, "run", pause="responding")
    run_id = hold_at(run, "responding")
    assert drillkit.marked_objects(kube_api, ns) == sorted(OBJECTS)
    assert not drillkit.web_available(kube_api, ns)  # the fault is active: web scaled to zero
    run.kill()

    # Long before the deadline: the owner's PID is dead on this host. KUBECONFIG unset, as on a machine whose
    # default kubeconfig is not this cluster: the run's target names its own kubeconfig.
    done = drillkit.cli("restore", run_id, env=run.env, extra={"KUBECONFIG": ""})

    assert done.returncode == 0, done.stdout + done.stderr
    assert drillkit.objects_state(kube_api, ns) == before
    assert drillkit.marked_objects(kube_api, ns) == []
    states = journal_rows(run.env.home, "SELECT state FROM suspensions WHERE run_id = ?", run_id)
    assert states == [("restored",)] * len(OBJECTS)
    assert journal_rows(run.env.home, "SELECT state, outcome FROM runs WHERE run_id = ?", run_id) == [
        ("done", "aborted")
    ]
    problems: list[str] = []
    said = [line for line in done.stdout.splitlines() if line.startswith("restored and verified: ")]
    expected = [
        f"restored and verified: {unit(ns, obj)} ({POLICY_KIND[obj.split('/')[0]]}) (run {run_id})"
        for obj in reversed(OBJECTS)
    ]
    if said != expected:
        problems.append(f"not restored in the reverse order of suspension: {said}")
    rollbacks = journal_rows(
        run.env.home, "SELECT actual FROM events WHERE run_id = ? AND name = 'rollback' ORDER BY seq", run_id
    )
    if not any("succeeded" in str(actual) for (actual,) in rollbacks):
        problems.append(
            f"the experiment's rollback did not reach the run's cluster: {rollbacks}; "
            f"`drill restore` exited {done.returncode} and said on stderr: {done.stderr!r}"
        )
    assert not problems, "\n".join(problems)
    kube_wait(lambda: drillkit.web_available(kube_api, ns), timeout=60, what="web back after the rollback")


# -- 3. Two runs started together (two journals): the Lease lets exactly one proceed ---------------------------


def test_two_runs_started_together_exactly_one_proceeds(
    *,
    kube_cluster: KubeCluster,
    kube_api: client.ApiClient,
    kube_namespace: str,
    app: dict[str, Any],
    spawn: Callable[..., Run],
    tmp_path: Path,
) -> None:
    ns, before = kube_namespace, app
    drill = drillkit.write_drill(tmp_path / "drill", ns, kube_cluster.kubeconfig)
    lock = threading.Lock()
    for rep in range(5):
        seen = audit_ids(kube_cluster, ns)
        barrier = threading.Barrier(2)
        pair: list[Run] = []

        def start(i: int, rep: int = rep, barrier: threading.Barrier = barrier, pair: list[Run] = pair) -> None:
            barrier.wait(timeout=30)
            # Both paused at responding once they get there: the one that proceeds holds the target until the
            # other one has ended, however slowly it started.
            run = spawn(drill, f"rep{rep}-{i}", pause="responding")
            with lock:
                pair.append(run)

        threads = [threading.Thread(target=start, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert len(pair) == 2

        def settled(pair: list[Run] = pair) -> bool:
            return all(r.proc.poll() is not None or r.paused_file("responding") is not None for r in pair)

        wait_for(settled, timeout_s=90, what="one run to pause at responding and the other to end")
        proceeding = [r for r in pair if r.proc.poll() is None]
        refused = [r for r in pair if r.proc.poll() is not None]
        assert len(proceeding) == 1 and len(refused) == 1, "\n".join(r.output() for r in pair)
        [winner], [loser] = proceeding, refused
        paused = winner.paused_file("responding")
        assert paused is not None
        winner_id = paused.name.removesuffix(".responding.paused")
        assert loser.proc.returncode == 2, loser.output()
        assert "target not locked" in loser.stderr() and f"run {winner_id} holds the Lease" in loser.stderr(), (
            loser.output()
        )

        (winner.env.hooks_dir / f"{winner_id}.responding.resume").touch()
        assert winner.proc.wait(timeout=120) == 0, winner.output()

        patches = object_patches(kube_cluster, ns, after=seen)
        assert sorted(patches) == sorted(OBJECTS), sorted(patches)
        for obj, events in patches.items():
            real = [e for e in events if "dryRun=All" not in e["requestURI"]]
            dry = [e for e in events if "dryRun=All" in e["requestURI"]]
            # Over the pair: one claim (with the suspended values) and one restore; one dry run in preflight.
            assert len(real) == 2 and len(dry) == 1, (rep, obj, [(e["verb"], e["requestURI"]) for e in events])
            assert all(e["responseStatus"]["code"] < 300 for e in events), (rep, obj, events)
        assert drillkit.objects_state(kube_api, ns) == before
        assert drillkit.marked_objects(kube_api, ns) == []
        assert lease(kube_api, ns) is None  # released at the end: the next pair starts on a free target


# -- 4. Refused by a live holder's Lease; after it expired, by the markers; after `drill restore`, free --------


def test_a_live_lease_then_the_markers_refuse_new_runs_until_restored(
    *,
    kube_cluster: KubeCluster,
    kube_api: client.ApiClient,
    kube_namespace: str,
    kube_wait: Callable[..., Any],
    app: dict[str, Any],
    spawn: Callable[..., Run],
    tmp_path: Path,
) -> None:
    ns, before = kube_namespace, app
    drill = drillkit.write_drill(tmp_path / "drill", ns, kube_cluster.kubeconfig)
    first = spawn(drill, "first", pause="responding")
    first_id = hold_at(first, "responding")
    [(deadline_at,)] = journal_rows(first.env.home, "SELECT deadline_at FROM runs WHERE run_id = ?", first_id)
    deadline = datetime.fromtimestamp(float(deadline_at), UTC).isoformat(timespec="seconds")  # type: ignore[arg-type]

    second = spawn(drill, "second")
    assert second.proc.wait(timeout=120) == 2, second.output()
    refusal = second.stderr()
    assert "target not locked" in refusal, refusal
    assert f"run {first_id} holds the Lease {ns}/{LEASE}" in refusal, refusal
    assert f"host {socket.gethostname()}" in refusal and f"deadline {deadline}" in refusal, refusal
    assert drillkit.marked_objects(kube_api, ns) == sorted(OBJECTS)
    assert all((m := marker_of(kube_api, ns, o)) is not None and m.run_id == first_id for o in OBJECTS)

    first.kill()
    during = drillkit.objects_state(kube_api, ns)
    held = lease(kube_api, ns)
    assert held is not None and held["holderIdentity"] == first_id
    free_at = lease_free_at(held)
    kube_wait(lambda: time.time() > free_at + 0.5, timeout=45, what="the dead run's Lease to expire")
    held = lease(kube_api, ns)
    assert held is not None and lease_free_at(held) == free_at  # nobody renewed it meanwhile

    third = spawn(drill, "third")
    assert third.proc.wait(timeout=120) == 2, third.output()
    refusal = third.stderr()
    assert "holds the Lease" not in refusal, refusal  # the Lease expired: not what refuses it now
    assert "target not locked" in refusal and f"carries a marker from run {first_id}" in refusal, refusal
    assert f"`drill restore {first_id}`" in refusal, refusal
    assert drillkit.objects_state(kube_api, ns) == during  # changed nothing
    assert lease(kube_api, ns) is None  # the refused run took the expired Lease, then freed it

    # KUBECONFIG names this cluster, as for a user whose current cluster it is: `drill restore` plays the
    # experiment's rollback (web back to 3) with chaosk8s' default config (see the journal test above), and the
    # next run needs web fully available for its steady state.
    restored = drillkit.cli("restore", first_id, env=first.env, extra={"KUBECONFIG": str(kube_cluster.kubeconfig)})
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert drillkit.objects_state(kube_api, ns) == before
    kube_wait(lambda: drillkit.web_available(kube_api, ns), timeout=60, what="web back after the rollback")

    fourth = spawn(drill, "fourth")
    assert fourth.proc.wait(timeout=120) == 0, fourth.output()
    assert drillkit.objects_state(kube_api, ns) == before
    assert drillkit.marked_objects(kube_api, ns) == []
