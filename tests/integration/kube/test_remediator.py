"""The example remediation operator (examples/remediator) against the real control plane.

It runs as a subprocess watching a fresh namespace; the session fixture installed its CRD. Every wait is
bounded and waits on a condition: the Deployment's replicas, a Kubernetes Event, or the operator's own log
line. The one "nothing happens" check (suspended) holds until the operator has both logged that it saw the
change and skipped it, and then run a full resync pass after that, with replicas and Events checked at
every poll meanwhile.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.integration.kube.conftest import KubeCluster, deployment

pytestmark = pytest.mark.kube

REPO = Path(__file__).resolve().parents[3]
REMEDIATOR = REPO / "examples" / "remediator" / "remediator.py"
GROUP, VERSION, PLURAL = "remediation.drill.dev", "v1", "remediators"
RESYNC_S = 3.0  # the operator's default is 10 s; shorter here so the suspended check spans a pass quickly
REACT_S = 5.0  # "within about a second", with room for a loaded machine


class Operator:
    """The remediator subprocess and its log (stderr, to a file)."""

    def __init__(self, cluster: KubeCluster, ns: str, log_path: Path, *extra: str) -> None:
        self.log_path = log_path
        self._log = log_path.open("w", encoding="utf-8")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(REMEDIATOR),
                "--kubeconfig",
                str(cluster.kubeconfig),
                "--namespace",
                ns,
                "--resync",
                str(RESYNC_S),
                "--verbose",
                *extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            cwd=REPO,
        )

    def lines(self) -> list[str]:
        return self.log_path.read_text(encoding="utf-8").splitlines()

    def wait_line(self, wait: Callable[..., Any], pattern: str, *, after: int = 0, timeout: float = 30) -> int:
        """Wait for a log line matching ``pattern`` at index >= ``after``; returns its index."""
        rx = re.compile(pattern)

        def found() -> int | None:
            if self.proc.poll() is not None:
                pytest.fail(f"the operator exited ({self.proc.returncode}):\n" + "\n".join(self.lines()))
            for i, line in enumerate(self.lines()[after:], start=after):
                if rx.search(line):
                    return i + 1  # +1: never 0 (falsy); callers get the index just past the line
            return None

        return int(wait(found, timeout=timeout, interval=0.05, what=f"operator log line /{pattern}/")) - 1

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=15)
        finally:
            self._log.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=15)
        self._log.close()


@pytest.fixture
def start_operator(kube_cluster: KubeCluster, kube_namespace: str, tmp_path: Path) -> Iterator[Callable[..., Operator]]:
    started: list[Operator] = []

    def start(*extra: str) -> Operator:
        op = Operator(kube_cluster, kube_namespace, tmp_path / f"remediator-{len(started)}.log", *extra)
        started.append(op)
        return op

    yield start
    for op in started:
        op.kill()


def _setup(api: client.ApiClient, ns: str, *, suspend: bool = False) -> None:
    client.AppsV1Api(api).create_namespaced_deployment(ns, deployment("web", 3))
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP,
        VERSION,
        ns,
        PLURAL,
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Remediator",
            "metadata": {"name": "web", "labels": {"drill.dev/remediation": "true"}},
            "spec": {"target": "web", "minReplicas": 3, "suspend": suspend},
        },
    )


def _replicas(api: client.ApiClient, ns: str) -> int:
    return int(client.AppsV1Api(api).read_namespaced_deployment("web", ns).spec.replicas)


def _scale(api: client.ApiClient, ns: str, replicas: int) -> None:
    client.AppsV1Api(api).patch_namespaced_deployment(
        "web", ns, {"spec": {"replicas": replicas}}, _content_type="application/merge-patch+json"
    )


def _suspend(api: client.ApiClient, ns: str, value: bool) -> None:
    client.CustomObjectsApi(api).patch_namespaced_custom_object(
        GROUP, VERSION, ns, PLURAL, "web", {"spec": {"suspend": value}}, _content_type="application/merge-patch+json"
    )


def _remediated(api: client.ApiClient, ns: str) -> list[client.CoreV1Event]:
    events = client.CoreV1Api(api).list_namespaced_event(
        ns, field_selector="reason=Remediated,involvedObject.kind=Deployment,involvedObject.name=web"
    )
    return list(events.items)


def test_repairs_skips_while_suspended_and_repairs_on_resume(
    kube_api: client.ApiClient,
    kube_namespace: str,
    kube_wait: Callable[..., Any],
    start_operator: Callable[..., Operator],
) -> None:
    ns = kube_namespace
    _setup(kube_api, ns)
    op = start_operator()
    op.wait_line(kube_wait, r"listed 1 deployments")
    op.wait_line(kube_wait, rf"remediator {ns}/web: target=web minReplicas=3 suspend=false")
    assert _replicas(kube_api, ns) == 3
    assert _remediated(kube_api, ns) == []  # at its minimum: nothing to do

    # below the minimum: scaled back, with an Event on the Deployment
    _scale(kube_api, ns, 1)
    kube_wait(lambda: _replicas(kube_api, ns) == 3, timeout=REACT_S, interval=0.05, what="web scaled back to 3")
    events = kube_wait(lambda: _remediated(kube_api, ns), timeout=10, what="a Remediated Event on deployment web")
    assert len(events) == 1
    assert events[0].message == "Scaled from 1 to 3 replicas (Remediator web)"
    assert events[0].reporting_component == "remediation.drill.dev/remediator"
    assert events[0].related is not None and events[0].related.kind == "Remediator"
    op.wait_line(kube_wait, rf"remediate {ns}/web: deployment web scaled from 1 to minReplicas 3")

    # suspended: the operator sees the scale-down and leaves it alone, through a whole resync pass
    _suspend(kube_api, ns, True)
    op.wait_line(kube_wait, rf"remediator {ns}/web: target=web minReplicas=3 suspend=true")
    _scale(kube_api, ns, 0)
    skipped = op.wait_line(kube_wait, rf"skip {ns}/web: suspended \(deployment web has 0 replicas < minReplicas 3\)")

    def resync_passed_with_nothing_done() -> bool:
        assert _replicas(kube_api, ns) == 0, "the suspended operator scaled web"
        assert len(_remediated(kube_api, ns)) == 1, "the suspended operator recorded a Remediated Event"
        return any(re.search(rf"resync {ns}:", line) for line in op.lines()[skipped + 1 :])

    kube_wait(resync_passed_with_nothing_done, timeout=RESYNC_S + 5, what="a resync pass after the skip")
    assert _replicas(kube_api, ns) == 0
    assert not any(" INFO remediate " in line for line in op.lines()[skipped:])

    # resumed: repaired at once
    _suspend(kube_api, ns, False)
    kube_wait(lambda: _replicas(kube_api, ns) == 3, timeout=REACT_S, interval=0.05, what="web repaired on resume")
    kube_wait(lambda: len(_remediated(kube_api, ns)) == 2, timeout=10, what="a second Remediated Event")
    op.wait_line(kube_wait, rf"remediate {ns}/web: deployment web scaled from 0 to minReplicas 3", after=skipped)

    assert op.stop() == 0
    assert op.lines()[-2:] and "received SIGTERM: stopping" in op.lines()[-2]
    assert op.lines()[-1].endswith("stopped")


def test_relists_after_an_expired_watch(
    kube_api: client.ApiClient,
    kube_namespace: str,
    kube_wait: Callable[..., Any],
    start_operator: Callable[..., Operator],
) -> None:
    """A watch from a resourceVersion the API server no longer has gets 410 Gone; the operator re-lists."""
    ns = kube_namespace
    _setup(kube_api, ns)
    op = start_operator("--watch-from", "1")
    expired = op.wait_line(kube_wait, r"watch remediators expired \(410 Gone\): re-listing")
    op.wait_line(kube_wait, r"listed 1 remediators", after=expired)
    op.wait_line(kube_wait, rf"remediator {ns}/web: target=web minReplicas=3 suspend=false")

    _scale(kube_api, ns, 2)
    kube_wait(lambda: _replicas(kube_api, ns) == 3, timeout=REACT_S, interval=0.05, what="web scaled back to 3")
    op.wait_line(kube_wait, rf"remediate {ns}/web: deployment web scaled from 2 to minReplicas 3")
    assert op.stop(signal.SIGINT) == 0
    assert "received SIGINT: stopping" in op.lines()[-2]


def test_suspended_from_the_start_never_acts(
    kube_api: client.ApiClient,
    kube_namespace: str,
    kube_wait: Callable[..., Any],
    start_operator: Callable[..., Operator],
) -> None:
    """A Remediator created suspended, its target already below the minimum: skipped on the first list."""
    ns = kube_namespace
    _setup(kube_api, ns, suspend=True)
    _scale(kube_api, ns, 1)
    op = start_operator()
    skipped = op.wait_line(kube_wait, rf"skip {ns}/web: suspended \(deployment web has 1 replicas < minReplicas 3\)")

    def resync_passed() -> bool:
        assert _replicas(kube_api, ns) == 1 and _remediated(kube_api, ns) == []
        return any(f"resync {ns}:" in line for line in op.lines()[skipped + 1 :])

    kube_wait(resync_passed, timeout=RESYNC_S + 5, what="a resync pass after the skip")
    # one skip line per change left alone, not one per pass
    assert sum(f"skip {ns}/web" in line for line in op.lines()) == 1
    assert op.stop() == 0
