"""Building blocks for drills run end to end against the test control plane.

``make_app`` creates a small shop in a namespace: a ``web`` Deployment (3 replicas), its HPA and a remediation
CronJob, both labelled ``drill.dev/remediation=true``. ``write_drill`` writes a Chaos Toolkit experiment that
scales ``web`` to zero with chaostoolkit-kubernetes (steady state: ``web`` fully available; rollback: back to 3)
and a drill file on that namespace. ``objects_state`` reads back what a restore must leave exactly as it was.
``runs`` starts `drill run` in the background (held at a step by the test pause hook when asked) as a ``Run``.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from orchestrator.targets.kubernetes import LEASE_NAME
from tests.conftest import REPO, DrillEnv, drill_cmd, wait_for
from tests.integration.kube.conftest import KubeCluster, deployment

REMEDIATION = {"drill.dev/remediation": "true"}


def make_app(api: client.ApiClient, ns: str, *, cronjobs: int = 1) -> None:
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(ns, deployment("web", 3))
    client.AutoscalingV2Api(api).create_namespaced_horizontal_pod_autoscaler(
        ns,
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "labels": REMEDIATION},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 2,
                "maxReplicas": 6,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
                    }
                ],
            },
        },
    )
    batch = client.BatchV1Api(api)
    for index in range(cronjobs):
        batch.create_namespaced_cron_job(
            ns,
            {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "metadata": {"name": f"web-restarter-{index}", "labels": REMEDIATION},
                "spec": {
                    "schedule": "*/5 * * * *",
                    "jobTemplate": {
                        "spec": {
                            "template": {
                                "spec": {
                                    "restartPolicy": "Never",
                                    "containers": [{"name": "r", "image": "registry.invalid/restarter:1"}],
                                }
                            }
                        }
                    },
                },
            },
        )


def web_available(api: client.ApiClient, ns: str) -> bool:
    try:
        dep = client.AppsV1Api(api).read_namespaced_deployment(name="web", namespace=ns)
    except ApiException:
        return False
    return bool(dep.spec.replicas and dep.status.ready_replicas == dep.spec.replicas)


def experiment(ns: str) -> dict[str, Any]:
    def deployment_action(name: str, replicas: int) -> dict[str, Any]:
        return {
            "type": "action",
            "name": name,
            "provider": {
                "type": "python",
                "module": "chaosk8s.deployment.actions",
                "func": "scale_deployment",
                "arguments": {"name": "web", "replicas": replicas, "ns": "${kube_namespace}"},
            },
        }

    return {
        "title": "web loses every replica",
        "description": "The web Deployment is scaled to zero; nothing may bring it back but the responder.",
        "configuration": {"kube_namespace": {"type": "env", "key": "DRILL_TEST_NAMESPACE", "default": ns}},
        "steady-state-hypothesis": {
            "title": "web is fully available",
            "probes": [
                {
                    "type": "probe",
                    "name": "web-available",
                    "tolerance": True,
                    "provider": {
                        "type": "python",
                        "module": "chaosk8s.deployment.probes",
                        "func": "deployment_fully_available",
                        "arguments": {"name": "web", "ns": "${kube_namespace}", "timeout": 1},
                    },
                }
            ],
        },
        "method": [deployment_action("scale-web-to-zero", 0)],
        "rollbacks": [deployment_action("scale-web-back", 3)],
    }


def write_drill(
    folder: Path,
    ns: str,
    kubeconfig: Path,
    *,
    name: str = "kube-drill",
    mode: str = "no-automation",
    policies: list[dict[str, Any]] | None = None,
    max_duration: str = "5m",
    concurrency: int | None = None,
    **spec: Any,
) -> Path:
    """A drill file (and its experiment) on namespace ``ns``; ``spec`` entries override the spec's fields.

    ``concurrency``: the target's requests in flight (1: objects one after another, so a test can stop a run
    between two of them); default: the target's default."""
    folder.mkdir(parents=True, exist_ok=True)
    exp = folder / f"{name}-experiment.json"
    exp.write_text(json.dumps(experiment(ns), indent=2), encoding="utf-8")
    if policies is None:
        policies = [
            {"name": "web-hpa", "kind": "hpa", "object": {"namespace": ns, "name": "web"}},
            {"name": "remediation-jobs", "kind": "cronjob", "selector": {"labels": "drill.dev/remediation=true"}},
        ]
    body: dict[str, Any] = {
        "mode": mode,
        "target": {
            "kind": "kubernetes",
            "kubeconfig": str(kubeconfig),
            "namespaces": [ns],
            "mitigation": {"namespace": ns, "deployment": "web", "replicas": 3},
            **({"concurrency": concurrency} if concurrency is not None else {}),
        },
        "policies": policies if mode == "no-automation" else [],
        "experiment": {"path": str(exp)},
        "participants": [{"name": "alice", "role": "responder"}],
        "detection": {"interval": "0.5s", "holdWindow": "1s"},
        "guardrails": {"maxDuration": max_duration},
    }
    if mode == "auto-recovery":
        body["expectations"] = {"recover": "60s"}
    body.update(spec)
    path = folder / f"{name}.yaml"
    path.write_text(
        yaml.safe_dump({"apiVersion": "drill.dev/v1alpha1", "kind": "Drill", "metadata": {"name": name}, "spec": body}),
        encoding="utf-8",
    )
    return path


def objects_state(api: client.ApiClient, ns: str) -> dict[str, Any]:
    """spec, labels and annotations of the HPAs and CronJobs of ``ns`` (what a restore must put back exactly)."""
    state: dict[str, Any] = {}
    hpas = client.AutoscalingV2Api(api).list_namespaced_horizontal_pod_autoscaler(ns, _preload_content=False)
    cronjobs = client.BatchV1Api(api).list_namespaced_cron_job(ns, _preload_content=False)
    for kind, resp in (("HorizontalPodAutoscaler", hpas), ("CronJob", cronjobs)):
        for item in json.loads(resp.data)["items"]:
            meta = item["metadata"]
            state[f"{kind}/{meta['name']}"] = {
                "spec": item["spec"],
                "labels": meta.get("labels") or {},
                "annotations": meta.get("annotations") or {},
                "uid": meta["uid"],
            }
    return state


def marked_objects(api: client.ApiClient, ns: str) -> list[str]:
    """Objects of ``ns`` that carry drill's label (found server-side, as `drill restore --expired` finds them)."""
    found: list[str] = []
    selector = "drill.dev/suspended"
    hpas = client.AutoscalingV2Api(api).list_namespaced_horizontal_pod_autoscaler(ns, label_selector=selector)
    for item in hpas.items:
        found.append(f"HorizontalPodAutoscaler/{item.metadata.name}")
    for item in client.BatchV1Api(api).list_namespaced_cron_job(ns, label_selector=selector).items:
        found.append(f"CronJob/{item.metadata.name}")
    return sorted(found)


# -- running drill in tests ----------------------------------------------------------------------------------


def launch(
    folder: Path, drill: Path, *, auto: str, pause: str | None = None
) -> tuple[subprocess.Popen[str], DrillEnv, Path, Path]:
    """`drill run DRILL --plain --auto-respond AUTO` in the background, with its own drill home in ``folder``
    (``pause``: held there by the test pause hook); its process, home, and stdout/stderr files."""
    folder.mkdir(parents=True)
    env = DrillEnv(home=folder / "home", archive=folder / "archive")
    out, err = folder / "stdout", folder / "stderr"
    with out.open("w", encoding="utf-8") as fout, err.open("w", encoding="utf-8") as ferr:
        proc = subprocess.Popen(
            drill_cmd("run", str(drill), "--plain", "--auto-respond", auto),
            env=env.env(**({"DRILL_TEST_PAUSE_AT": pause} if pause else {})),
            cwd=REPO,
            stdout=fout,
            stderr=ferr,
            text=True,
        )
    return proc, env, out, err


@dataclass
class Run:
    """A `drill run` started in the background (:func:`runs`), with its own drill home; output goes to files."""

    proc: subprocess.Popen[str]
    env: DrillEnv
    out: Path
    err: Path

    def output(self) -> str:
        return f"stdout:\n{self.out.read_text(encoding='utf-8')}\nstderr:\n{self.err.read_text(encoding='utf-8')}"

    def stderr(self) -> str:
        return self.err.read_text(encoding="utf-8")

    def alive(self) -> bool:
        if self.proc.poll() is not None:
            pytest.fail(f"drill run exited ({self.proc.returncode}) while the test held it:\n{self.output()}")
        return True

    def kill(self) -> None:
        self.proc.kill()  # SIGKILL
        self.proc.wait(timeout=10)

    def paused_file(self, step: str) -> Path | None:
        """The pause hook's file of the run's first pause at ``step``, once it is there."""
        hooks = self.env.hooks_dir
        found = sorted(hooks.glob(f"*.{step}.paused")) if hooks.exists() else []
        return found[0] if found else None

    def paused_at(self, step: str, *, timeout_s: float = 90) -> str:
        """Wait (the run alive) until it holds at its first pause at ``step``; its run id."""
        found = wait_for(
            lambda: self.alive() and self.paused_file(step), timeout_s=timeout_s, what=f"drill run to pause at {step}"
        )
        assert isinstance(found, Path)
        return found.name.removesuffix(f".{step}.paused")

    def resume(self, run_id: str, step: str) -> None:
        """Let it go on; the resume file stays, so its later pauses at ``step`` (one per object) pass at once."""
        (self.env.hooks_dir / f"{run_id}.{step}.resume").touch()


R = TypeVar("R", bound=Run)


@contextlib.contextmanager
def runs(folder: Path, *, auto: str, kind: type[R]) -> Iterator[Callable[..., R]]:
    """``start(drill, name="run", *, pause=None, auto=auto)``: a :class:`Run` (``kind``) in ``folder/name``; every
    run still alive at the end is SIGKILLed."""
    started: list[R] = []

    def start(drill: Path, name: str = "run", *, pause: str | None = None, auto: str = auto) -> R:
        run = kind(*launch(folder / name, drill, auto=auto, pause=pause))
        started.append(run)
        return run

    try:
        yield start
    finally:
        for run in started:
            if run.proc.poll() is None:
                run.kill()


def lease(api: client.ApiClient, ns: str) -> dict[str, Any] | None:
    """The spec of drill's Lease in ``ns`` (holderIdentity, renewTime, leaseDurationSeconds), or None."""
    try:
        resp: Any = client.CoordinationV1Api(api).read_namespaced_lease(LEASE_NAME, ns, _preload_content=False)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    spec: dict[str, Any] = json.loads(resp.data)["spec"]
    return spec


def renewed_at(spec: dict[str, Any]) -> float:
    """A Lease spec's renewTime, in seconds since the epoch."""
    return datetime.fromisoformat(spec["renewTime"].replace("Z", "+00:00")).timestamp()


def cli(
    *args: str, env: DrillEnv, cwd: Path = REPO, extra: dict[str, str] | None = None, timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    """The drill CLI to completion; ``extra`` sets environment variables, an empty value unsets one."""
    environ = env.env(**(extra or {}))
    for key in [k for k, v in environ.items() if v == ""]:
        del environ[key]
    return subprocess.run(
        drill_cmd(*args), capture_output=True, text=True, timeout=timeout, env=environ, cwd=cwd, check=False
    )


def unit(ns: str, obj: str) -> str:
    """The suspension unit of ``Kind/name`` in the default drill of ``write_drill``."""
    kind, name = obj.split("/")
    if kind == "HorizontalPodAutoscaler":
        return f"web-hpa:autoscaling/v2:HorizontalPodAutoscaler:{ns}/{name}"
    return f"remediation-jobs:batch/v1:CronJob:{ns}/{name}"


def audit_ids(cluster: KubeCluster, ns: str) -> set[str]:
    """The audit IDs of every write in ``ns`` so far (to look only at what comes after)."""
    return {e["auditID"] for e in cluster.audit_events(namespace=ns)}
