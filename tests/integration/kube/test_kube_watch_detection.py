"""Watch-based detection on the test control plane: the steady state declared as conditions on objects is
watched through the API (list, watch from its resourceVersion with bookmarks, re-list on 410 Gone), and the
timeline takes its times from the watch events.

The detection latency figure: condition true (the simulated responder's scale, when its PATCH returned) ->
the ``steady-state-restored`` timeline event, over 20 trials through the real responding loop.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from orchestrator import records
from orchestrator.adapters import chaostoolkit, kube, kubewatch
from orchestrator.clock import SystemClock
from orchestrator.definitions import models
from orchestrator.run import autorespond, responding
from orchestrator.targets.kubernetes import KubernetesTarget
from tests.conftest import DrillEnv, journal_rows
from tests.integration.kube import drillkit
from tests.integration.kube.conftest import KubeCluster, deployment

pytestmark = pytest.mark.kube

TRIALS = 20


def _until(watch: kubewatch.ConditionWatch, want: Callable[[kubewatch.State], bool], what: str) -> kubewatch.State:
    """The watch's state once ``want`` holds of it (woken by each change, never polled), or fail after 60 s."""
    deadline = time.monotonic() + 60.0
    state = watch.state()
    while not want(state):
        left = deadline - time.monotonic()
        assert left > 0, f"{what}: not seen in 60s; last state {state}, last error {watch.last_error!r}"
        state = watch.wait_change(state.version, left)
    return state


@pytest.fixture
def kube_admin(kube_cluster: KubeCluster) -> Iterator[kube.KubeApi]:
    with kube.KubeConfigRef(kubeconfig=str(kube_cluster.kubeconfig), context=None).load() as api:
        yield api


def _scale(apps: client.AppsV1Api, ns: str, replicas: int) -> None:
    apps.patch_namespaced_deployment("web", ns, {"spec": {"replicas": replicas}})


def test_breach_and_recovery_are_seen_from_events(
    kube_api: client.ApiClient, kube_namespace: str, kube_admin: kube.KubeApi
) -> None:
    ns = kube_namespace
    apps = client.AppsV1Api(kube_api)
    apps.create_namespaced_deployment(ns, deployment("web", 3))
    node = client.CoreV1Api(kube_api).list_node().items[0].metadata.name
    conditions = [
        kubewatch.Condition.deployment(ns, "web"),  # every desired replica available
        kubewatch.Condition.pods(ns, "app=web", ready=3),
        kubewatch.Condition.status("v1", "Node", "", node, type_="Ready"),  # a cluster-scoped object's condition
    ]
    watch = kubewatch.ConditionWatch(kube_admin, conditions)
    watch.start()
    try:
        held = _until(watch, lambda s: s.known and s.holds, "web available")
        assert held.since is not None and f"Node {node}: Ready=True" in held.detail

        written = time.time()
        _scale(apps, ns, 0)
        broken = _until(watch, lambda s: not s.holds, "the breach")
        assert broken.since is not None and broken.since >= written
        assert "Deployment" in broken.detail and f"{ns}/web" in broken.detail
        assert broken.breached_at is not None

        written = time.time()
        _scale(apps, ns, 3)
        back = _until(watch, lambda s: s.holds, "the recovery")
        assert back.since is not None and back.since >= written
        assert back.version == broken.version + 1  # one change: false -> true, nothing polled in between
    finally:
        watch.close()


def test_a_too_old_resource_version_is_gone_and_relisted(
    kube_api: client.ApiClient, kube_namespace: str, kube_admin: kube.KubeApi
) -> None:
    apps = client.AppsV1Api(kube_api)
    apps.create_namespaced_deployment(kube_namespace, deployment("web", 1))
    # resourceVersion 1 is long compacted out of the API server's watch cache: it answers 410 Gone.
    watch = kubewatch.ConditionWatch(
        kube_admin, [kubewatch.Condition.deployment(kube_namespace, "web", available=1)], start_from="1"
    )
    watch.start()
    try:
        state = _until(watch, lambda s: s.known and s.holds, "web available after the re-list")
        assert watch.relists == 1
        assert watch.errors == 0, watch.last_error
        _scale(apps, kube_namespace, 0)  # and the watch resumed from the re-list goes on seeing events
        assert not _until(watch, lambda s: s.version > state.version, "the breach after the re-list").holds
    finally:
        watch.close()


class _NoProbes:
    def steady_state(self) -> chaostoolkit.StepResult:
        raise AssertionError("the probes are not polled when conditions are watched")

    def check_probe(self, activity: dict[str, Any]) -> chaostoolkit.StepResult:
        raise AssertionError("no guardrails here")


def trial(spec: models.Spec, target: KubernetesTarget) -> tuple[float, float]:
    """One responding loop: the responder scales web back (mitigate at 0.1 s); returns (restored ``at`` - the
    PATCH returned, restored event recorded - the PATCH returned)."""
    clock = SystemClock()
    commands: list[records.Event] = []
    restored: list[tuple[float, float]] = []
    written: list[float] = []

    def timeline(kind: records.TimelineKind, *, actor: str = "drill", at: float | None = None, **data: Any) -> None:
        if kind is records.TimelineKind.STEADY_STATE_RESTORED:
            restored.append((at if at is not None else clock.now(), clock.now()))

    def mitigate() -> str:
        done = target.simulate_mitigation()
        written.append(clock.now())
        return done

    def take() -> list[records.Event]:
        taken = list(commands)
        commands.clear()
        return taken

    now = clock.now()
    responding.respond(
        responding.Context(
            run_id="latency",
            spec=spec,
            clock=clock,
            stop=threading.Event(),
            t0=now,
            started_at=now,
            poll_s=0.05,
            probes=_NoProbes(),
            take_commands=take,
            send_command=commands.append,
            timeline=timeline,
            action=lambda name, **kw: None,
            request_abort=lambda reason: None,
            simulate_mitigation=mitigate,
            auto_respond=[
                autorespond.Step(records.Command.MITIGATED, 0.1),
                autorespond.Step(records.Command.RESOLVE, 1.5),
            ],
            watch=lambda: target.watch_conditions(spec.detection.conditions, now=clock.now),
        )
    )
    assert written and restored, "the responder's scale and the restored steady state are both on the timeline"
    return restored[0][0] - written[0], restored[0][1] - written[0]


def latency_trials(kubeconfig: Path, api: client.ApiClient, ns: str, trials: int = TRIALS) -> list[tuple[float, float]]:
    """``trials`` times: scale ``web`` in ``ns`` to zero (the fault), then one responding loop whose responder
    scales it back; each trial's (restored ``at`` - the PATCH returned, restored recorded - the PATCH returned).
    Creates the ``web`` Deployment (3 replicas). Also run by scripts/bench_kube_fanout.py."""
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(ns, deployment("web", 3))
    spec = models.Spec.model_validate(
        {
            "mode": "no-automation",
            "target": {
                "kind": "kubernetes",
                "kubeconfig": str(kubeconfig),
                "namespaces": [ns],
                "mitigation": {"namespace": ns, "deployment": "web", "replicas": 3},
            },
            "policies": [{"name": "hpa", "kind": "hpa", "object": {"namespace": ns, "name": "web"}}],
            "experiment": {"path": "unused.json"},
            "participants": [{"name": "alice", "role": "responder"}],
            "detection": {
                "holdWindow": "0s",
                "conditions": [{"deployment": {"namespace": ns, "name": "web"}, "availableReplicas": 3}],
            },
            "guardrails": {"maxDuration": "2m"},
        }
    )
    assert isinstance(spec.target, models.KubernetesTarget)
    target = KubernetesTarget.from_spec(spec.target)
    admin = kube.KubeConfigRef(kubeconfig=str(kubeconfig), context=None).load()
    down = kubewatch.ConditionWatch(admin, [kubewatch.Condition.deployment(ns, "web", available=1)])
    down.start()
    figures: list[tuple[float, float]] = []
    try:
        for _ in range(trials):
            _scale(apps, ns, 0)  # the fault; the trial starts once the watch has seen it
            _until(down, lambda s: s.known and not s.holds, "web down")
            figures.append(trial(spec, target))
    finally:
        down.close()
        target.api.close()
        admin.close()
    return figures


def test_detection_latency_over_20_trials(
    kube_cluster: KubeCluster, kube_api: client.ApiClient, kube_namespace: str
) -> None:
    figures = latency_trials(kube_cluster.kubeconfig, kube_api, kube_namespace)
    at_latency = [a for a, _ in figures]
    recorded_latency = [r for _, r in figures]
    print(
        f"\n[watch detection latency, {TRIALS} trials] scale written -> steady-state-restored at: "
        f"median {statistics.median(at_latency):.3f}s, max {max(at_latency):.3f}s; "
        f"-> event recorded: median {statistics.median(recorded_latency):.3f}s, max {max(recorded_latency):.3f}s"
    )
    assert len(figures) == TRIALS
    assert statistics.median(at_latency) < 2.0
    assert max(recorded_latency) < 10.0
    assert all(r >= a for a, r in figures)


def test_drill_run_with_watched_conditions(  # noqa: PLR0917 (pytest fixtures)
    kube_cluster: KubeCluster,
    kube_api: client.ApiClient,
    kube_namespace: str,
    kube_wait: Callable[..., Any],
    drill_env: DrillEnv,
    run_drill: Callable[..., Any],
    tmp_path: Path,
) -> None:
    ns = kube_namespace
    drillkit.make_app(kube_api, ns)
    kube_wait(lambda: drillkit.web_available(kube_api, ns), timeout=60, what="web available")
    drill = drillkit.write_drill(
        tmp_path,
        ns,
        kube_cluster.kubeconfig,
        detection={
            "holdWindow": "1s",
            "conditions": [{"deployment": {"namespace": ns, "name": "web"}, "availableReplicas": 3}],
        },
    )

    done = run_drill("run", str(drill), "--plain", "--auto-respond", "ack=1s,diagnose=2s,mitigate=3s,resolve=6s")

    assert done.returncode == 0, done.stdout + done.stderr
    rows = journal_rows(drill_env.home, "SELECT name, at, data FROM events WHERE kind = 'timeline' ORDER BY seq")
    timeline = {str(name): (float(str(at)), json.loads(str(data))) for name, at, data in rows}
    assert timeline["detected"][1]["by"] == "watched conditions"
    scaled = timeline["mitigated"][0]  # the simulated responder's command, sent when its scale PATCH returned
    restored = timeline["steady-state-restored"][0]
    print(f"\n[drill run, watched conditions] scale written -> steady-state-restored at: {restored - scaled:.3f}s")
    assert 0.0 <= restored - scaled <= 0.5
    assert timeline["detected"][0] < scaled
