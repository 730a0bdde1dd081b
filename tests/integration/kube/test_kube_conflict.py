"""What a person does to suspended objects while a drill holds them, through the CLI on the real control plane.

drillkit's drill suspends the ``web`` HPA and two remediation CronJobs; the run is held at ``responding`` by the
test pause hook (``DRILL_TEST_PAUSE_AT``) while the admin changes the cluster, then resumed:

1. a suspended field changed (the HPA's ``scaleUp.selectPolicy``: neither the suspended ``Disabled`` nor the
   original ``Max``) is a conflict: nothing written to that object, its marker and label stay, the run exits 5
   and says ``drill restore RUN --force``; another object's other field (a CronJob's schedule) survives its
   restore; `drill restore RUN` refuses again without writing, `drill restore RUN --force` overwrites;
2. an object deleted meanwhile is reported and never recreated, the others restored;
3. an object replaced meanwhile (same name, new uid) is reported and left exactly as the person created it.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from orchestrator.policies import base as policy_base
from orchestrator.policies import kubernetes as kp
from tests.conftest import read_report, reported_dir
from tests.integration.kube import drillkit
from tests.integration.kube.conftest import KubeCluster
from tests.integration.kube.drillkit import audit_ids, unit

pytestmark = pytest.mark.kube

AUTO = "ack=0.1s,mitigate=0.2s,resolve=0.3s"
MERGE = "application/merge-patch+json"
HPA = "HorizontalPodAutoscaler/web"
CRON0 = "CronJob/web-restarter-0"
CRON1 = "CronJob/web-restarter-1"
OBJECTS = (HPA, CRON0, CRON1)
RESOURCE = {"HorizontalPodAutoscaler": "horizontalpodautoscalers", "CronJob": "cronjobs"}
EXIT_NOT_RESTORED = 5


cli = functools.partial(drillkit.cli, timeout=180)  # a held run's restore waits on the cluster


# -- the run and the CLI ---------------------------------------------------------------------------------------


@dataclass
class Run(drillkit.Run):
    """drillkit's run, held at ``responding``."""

    run_id: str = ""

    def release(self) -> int:
        """Let the held run go on; its exit status once it ended."""
        self.resume(self.run_id, "responding")
        return self.proc.wait(timeout=180)


@pytest.fixture
def held_run(tmp_path: Path) -> Iterator[Callable[[Path], Run]]:
    """Start `drill run DRILL` held at ``responding``; a run still alive after the test is killed."""
    with drillkit.runs(tmp_path, auto=AUTO, kind=Run) as start:

        def held(drill: Path) -> Run:
            run = start(drill, pause="responding")
            run.run_id = run.paused_at("responding", timeout_s=120)
            return run

        yield held


def journal_lines(run: Run) -> list[dict[str, Any]]:
    done = cli("journal", run.run_id, env=run.env)
    assert done.returncode == 0, done.stdout + done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def policy_rows(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in report["policies"]}


# -- the cluster -----------------------------------------------------------------------------------------------


def read_object(api: client.ApiClient, ns: str, obj: str) -> dict[str, Any] | None:
    kind, name = obj.split("/")
    try:
        if kind == "HorizontalPodAutoscaler":
            resp: Any = client.AutoscalingV2Api(api).read_namespaced_horizontal_pod_autoscaler(
                name, ns, _preload_content=False
            )
        else:
            resp = client.BatchV1Api(api).read_namespaced_cron_job(name, ns, _preload_content=False)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    data: dict[str, Any] = json.loads(resp.data)
    return data


def must_read(api: client.ApiClient, ns: str, obj: str) -> dict[str, Any]:
    found = read_object(api, ns, obj)
    assert found is not None, f"{obj} does not exist"
    return found


def merge_patch(api: client.ApiClient, ns: str, obj: str, body: dict[str, Any]) -> None:
    """A person's `kubectl patch --type merge`, as the admin."""
    kind, name = obj.split("/")
    if kind == "HorizontalPodAutoscaler":
        client.AutoscalingV2Api(api).patch_namespaced_horizontal_pod_autoscaler(name, ns, body, _content_type=MERGE)
    else:
        client.BatchV1Api(api).patch_namespaced_cron_job(name, ns, body, _content_type=MERGE)


def drill_metadata(obj: dict[str, Any]) -> tuple[str | None, str | None]:
    """(drill's marker annotation, drill's label) on ``obj``."""
    meta = obj["metadata"]
    return (meta.get("annotations") or {}).get(policy_base.MARKER_KEY), (meta.get("labels") or {}).get(kp.LABEL_KEY)


def select_policies(obj: dict[str, Any]) -> tuple[Any, Any]:
    behavior = obj["spec"].get("behavior") or {}
    return (behavior.get("scaleUp") or {}).get("selectPolicy"), (behavior.get("scaleDown") or {}).get("selectPolicy")


def writes_to(cluster: KubeCluster, ns: str, obj: str, *, after: set[str]) -> list[tuple[str, str]]:
    """(verb, requestURI) of the writes to ``obj`` (its status aside) audited since ``after`` that the server
    applied: dry runs aside, and refusals too (a restore's JSON patch whose ``test`` of the marker or the uid fails
    is answered 422 and changes nothing)."""
    kind, name = obj.split("/")
    found = []
    for event in cluster.audit_events(namespace=ns):
        ref = event.get("objectRef", {})
        if event["auditID"] in after or ref.get("resource") != RESOURCE[kind] or ref.get("name") != name:
            continue
        if ref.get("subresource") or "dryRun=All" in event["requestURI"]:
            continue
        if int((event.get("responseStatus") or {}).get("code") or 0) >= 400:
            continue
        found.append((event["verb"], event["requestURI"]))
    return found


def delete_cronjob(api: client.ApiClient, ns: str, name: str, kube_wait: Callable[..., Any]) -> None:
    client.BatchV1Api(api).delete_namespaced_cron_job(name, ns, propagation_policy="Background")
    kube_wait(lambda: read_object(api, ns, f"CronJob/{name}") is None, timeout=30, what=f"CronJob {name} gone")


@pytest.fixture
def app(kube_api: client.ApiClient, kube_namespace: str, kube_wait: Callable[..., Any]) -> dict[str, Any]:
    """drillkit's shop; the HPA's scaling policies are explicitly ``Max`` (so its original, its suspended value
    ``Disabled`` and a person's ``Min`` all differ). Returns the snapshot a restore must give back."""
    ns = kube_namespace
    drillkit.make_app(kube_api, ns, cronjobs=2)
    merge_patch(
        kube_api,
        ns,
        HPA,
        {"spec": {"behavior": {"scaleUp": {"selectPolicy": "Max"}, "scaleDown": {"selectPolicy": "Max"}}}},
    )
    kube_wait(lambda: drillkit.web_available(kube_api, ns), timeout=60, what="web available")
    state = drillkit.objects_state(kube_api, ns)
    assert sorted(state) == sorted(OBJECTS)
    assert select_policies(must_read(kube_api, ns, HPA)) == ("Max", "Max")
    assert state[CRON0]["spec"]["suspend"] is False and state[CRON0]["spec"]["schedule"] == "*/5 * * * *"
    return state


def held_with_everything_suspended(
    held_run: Callable[[Path], Run], api: client.ApiClient, ns: str, cluster: KubeCluster, tmp_path: Path
) -> Run:
    run = held_run(drillkit.write_drill(tmp_path / "drill", ns, cluster.kubeconfig))
    assert drillkit.marked_objects(api, ns) == sorted(OBJECTS)
    assert select_policies(must_read(api, ns, HPA)) == ("Disabled", "Disabled")
    assert must_read(api, ns, CRON0)["spec"]["suspend"] is True
    return run


# -- 1. a conflict on a suspended field; another change survives; restore refuses, --force overwrites ----------


def test_a_changed_suspended_field_is_a_conflict_until_forced(
    *,
    kube_cluster: KubeCluster,
    kube_api: client.ApiClient,
    kube_namespace: str,
    app: dict[str, Any],
    held_run: Callable[[Path], Run],
    tmp_path: Path,
) -> None:
    ns, before = kube_namespace, app
    run = held_with_everything_suspended(held_run, kube_api, ns, kube_cluster, tmp_path)
    run_id = run.run_id

    # A person, meanwhile: the HPA's suspended scaleUp policy to Min; the CronJob's schedule (not a drill field).
    merge_patch(kube_api, ns, HPA, {"spec": {"behavior": {"scaleUp": {"selectPolicy": "Min"}}}})
    merge_patch(kube_api, ns, CRON0, {"spec": {"schedule": "*/7 * * * *"}})

    code = run.release()

    assert code == EXIT_NOT_RESTORED, run.output()
    conflict = "spec.behavior.scaleUp.selectPolicy was set to Disabled and now holds Min"
    stderr = run.err.read_text(encoding="utf-8")
    assert f"AUTOMATION NOT RESTORED for run {run_id}" in stderr, run.output()
    assert unit(ns, HPA) in stderr and conflict in stderr, run.output()
    assert f"`drill restore {run_id} --force`" in stderr, run.output()

    # The HPA: nothing written, the person's value kept, drill's marker and label still there.
    hpa = must_read(kube_api, ns, HPA)
    assert select_policies(hpa) == ("Min", "Disabled")
    marker_text, label = drill_metadata(hpa)
    marker = policy_base.Marker.from_json(marker_text) if marker_text else None
    assert marker is not None and marker.run_id == run_id and marker.policy == unit(ns, HPA), marker_text
    assert label == "true"
    # The CronJob: its suspension restored, the person's schedule kept, no trace of drill.
    cron0 = must_read(kube_api, ns, CRON0)
    assert cron0["spec"]["suspend"] is False and cron0["spec"]["schedule"] == "*/7 * * * *", cron0["spec"]
    assert drill_metadata(cron0) == (None, None)
    after = drillkit.objects_state(kube_api, ns)
    assert after[CRON0] == {**before[CRON0], "spec": {**before[CRON0]["spec"], "schedule": "*/7 * * * *"}}
    assert after[CRON1] == before[CRON1]
    assert drillkit.marked_objects(kube_api, ns) == [HPA]

    # The journal: the restore of the HPA, not verified, naming the field, its suspended value and what it holds.
    lines = journal_lines(run)
    restores = [e for e in lines if e["name"] == "restore" and e["data"].get("policy") == unit(ns, HPA)]
    assert len(restores) == 1 and restores[0]["data"].get("verified") is False, restores
    assert conflict in restores[0]["actual"] and f"drill restore {run_id} --force" in restores[0]["actual"], restores
    [restored_entry] = [e for e in lines if e["kind"] == "timeline" and e["name"] == "restored"]
    assert any(conflict in failed for failed in restored_entry["data"]["failed"]), restored_entry
    assert len(restored_entry["data"]["restored"]) == 2, restored_entry
    # The report: the HPA failed with the conflict, the CronJobs restored.
    report: dict[str, Any] = read_report(reported_dir(run.out.read_text(encoding="utf-8")))
    rows = policy_rows(report)
    assert rows[unit(ns, HPA)]["state"] == "failed" and not rows[unit(ns, HPA)]["restore_verified"], rows
    assert conflict in rows[unit(ns, HPA)]["detail"], rows[unit(ns, HPA)]
    for obj in (CRON0, CRON1):
        assert rows[unit(ns, obj)]["state"] == "restored" and rows[unit(ns, obj)]["restore_verified"], rows
    assert any(e["event"] == "restored" and conflict in e["detail"] for e in report["timeline"]), report["timeline"]

    # `drill restore RUN` without --force refuses again and writes nothing.
    version = hpa["metadata"]["resourceVersion"]
    seen = audit_ids(kube_cluster, ns)
    again = cli("restore", run_id, env=run.env)
    assert again.returncode == EXIT_NOT_RESTORED, again.stdout + again.stderr
    assert f"NOT RESTORED: {unit(ns, HPA)}" in again.stderr and conflict in again.stderr, again.stderr
    assert writes_to(kube_cluster, ns, HPA, after=seen) == []
    hpa = must_read(kube_api, ns, HPA)
    assert hpa["metadata"]["resourceVersion"] == version
    assert select_policies(hpa) == ("Min", "Disabled") and drill_metadata(hpa)[1] == "true"

    # `drill restore RUN --force` overwrites the person's change with the original.
    forced = cli("restore", run_id, "--force", env=run.env)
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert f"restored and verified: {unit(ns, HPA)} (hpa) (run {run_id})" in forced.stdout, forced.stdout
    hpa = must_read(kube_api, ns, HPA)
    assert select_policies(hpa) == ("Max", "Max")
    assert drill_metadata(hpa) == (None, None)
    assert drillkit.objects_state(kube_api, ns)[HPA] == before[HPA]
    assert drillkit.marked_objects(kube_api, ns) == []
    status = cli("status", run_id, env=run.env)
    assert status.returncode == 0, status.stdout + status.stderr
    assert f"policy {unit(ns, HPA)}: restored (" in status.stdout, status.stdout
    report_now = json.loads(cli("status", run_id, "--json", env=run.env).stdout)
    assert all(p["state"] == "restored" for p in report_now["policies"]), report_now["policies"]


# -- 2. an object deleted during the drill: reported, never recreated, the others restored ----------------------


def test_an_object_deleted_during_the_drill_is_reported_and_not_recreated(
    *,
    kube_cluster: KubeCluster,
    kube_api: client.ApiClient,
    kube_namespace: str,
    kube_wait: Callable[..., Any],
    app: dict[str, Any],
    held_run: Callable[[Path], Run],
    tmp_path: Path,
) -> None:
    ns, before = kube_namespace, app
    run = held_with_everything_suspended(held_run, kube_api, ns, kube_cluster, tmp_path)
    delete_cronjob(kube_api, ns, "web-restarter-1", kube_wait)

    code = run.release()

    # Nothing of it is left to restore: the run ends restored (0) and says, on stderr and in the report, that the
    # object is gone and was not recreated; its suspension is settled as "gone", not "failed" forever.
    assert code == 0, run.output()
    deleted = f"{unit(ns, CRON1)}: CronJob {ns}/web-restarter-1 was deleted during the drill; not recreated"
    assert deleted in run.err.read_text(encoding="utf-8"), run.output()
    assert read_object(kube_api, ns, CRON1) is None
    after = drillkit.objects_state(kube_api, ns)
    assert after == {HPA: before[HPA], CRON0: before[CRON0]}
    assert drillkit.marked_objects(kube_api, ns) == []
    rows = policy_rows(read_report(reported_dir(run.out.read_text(encoding="utf-8"))))
    assert "was deleted during the drill; not recreated" in rows[unit(ns, CRON1)]["detail"], rows[unit(ns, CRON1)]
    assert rows[unit(ns, CRON1)]["state"] == "gone", rows[unit(ns, CRON1)]
    assert rows[unit(ns, HPA)]["state"] == "restored" and rows[unit(ns, CRON0)]["state"] == "restored", rows

    # Nothing is left that drill could ever restore: `drill restore RUN` must settle it, not fail forever.
    run_id = run.run_id
    tries = [cli("restore", run_id, env=run.env) for _ in range(2)]
    assert read_object(kube_api, ns, CRON1) is None  # never recreated
    assert [t.returncode for t in tries] == [0, 0], (
        f"`drill restore {run_id}` after the run, twice, exits {[t.returncode for t in tries]} on an object that "
        f"no longer exists (it fails the same way on every retry):\n{tries[-1].stdout}{tries[-1].stderr}"
    )


# -- 3. an object replaced during the drill (same name, new uid): reported, the new object untouched ------------


def test_an_object_replaced_during_the_drill_is_reported_and_left_untouched(
    *,
    kube_cluster: KubeCluster,
    kube_api: client.ApiClient,
    kube_namespace: str,
    kube_wait: Callable[..., Any],
    app: dict[str, Any],
    held_run: Callable[[Path], Run],
    tmp_path: Path,
) -> None:
    ns, before = kube_namespace, app
    run = held_with_everything_suspended(held_run, kube_api, ns, kube_cluster, tmp_path)
    old_uid = before[CRON1]["uid"]
    delete_cronjob(kube_api, ns, "web-restarter-1", kube_wait)
    replacement: dict[str, Any] = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "web-restarter-1", "labels": dict(drillkit.REMEDIATION)},
        "spec": {**before[CRON1]["spec"], "schedule": "*/9 * * * *"},
    }
    client.BatchV1Api(kube_api).create_namespaced_cron_job(ns, replacement)  # type: ignore[arg-type]
    created = must_read(kube_api, ns, CRON1)
    new_uid = created["metadata"]["uid"]
    assert new_uid != old_uid
    seen = audit_ids(kube_cluster, ns)

    code = run.release()

    assert code == 0, run.output()  # the object drill suspended is gone: said, settled, the new one untouched
    replaced = f"was replaced during the drill (uid {old_uid} -> {new_uid}); not touched"
    assert replaced in run.err.read_text(encoding="utf-8"), run.output()
    now = must_read(kube_api, ns, CRON1)
    assert now["metadata"]["uid"] == new_uid
    assert now["spec"] == created["spec"] and now["spec"]["schedule"] == "*/9 * * * *"
    assert now["metadata"].get("labels") == created["metadata"].get("labels") == drillkit.REMEDIATION
    assert drill_metadata(now) == (None, None)
    assert writes_to(kube_cluster, ns, CRON1, after=seen) == []
    after = drillkit.objects_state(kube_api, ns)
    assert after[HPA] == before[HPA] and after[CRON0] == before[CRON0]
    assert drillkit.marked_objects(kube_api, ns) == []
    rows = policy_rows(read_report(reported_dir(run.out.read_text(encoding="utf-8"))))
    assert replaced in rows[unit(ns, CRON1)]["detail"], rows[unit(ns, CRON1)]
    assert rows[unit(ns, CRON1)]["state"] == "gone", rows[unit(ns, CRON1)]
    assert rows[unit(ns, HPA)]["state"] == "restored" and rows[unit(ns, CRON0)]["state"] == "restored", rows

    # `drill restore RUN` leaves the new object alone, and has nothing left it could ever do.
    run_id = run.run_id
    tries = [cli("restore", run_id, env=run.env) for _ in range(2)]
    assert writes_to(kube_cluster, ns, CRON1, after=seen) == []
    assert must_read(kube_api, ns, CRON1)["spec"] == created["spec"]
    assert [t.returncode for t in tries] == [0, 0], (
        f"`drill restore {run_id}` after the run, twice, exits {[t.returncode for t in tries]} on an object it "
        f"must never touch (it fails the same way on every retry):\n{tries[-1].stdout}{tries[-1].stderr}"
    )
