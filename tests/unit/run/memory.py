"""Test doubles for the engine's unit tests, at the engine's own seams only: an in-memory target
(policies that hold a value and a marker, with switches to make one of them fail), a scripted
experiment session and a clock that moves only when the engine waits.

The real targets are covered against the real sandbox (and the real control plane) elsewhere;
here the point is the engine's logic on every exit path, on an injectable clock, with no sleeps.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator import errors
from orchestrator.adapters import chaostoolkit, ctkrun
from orchestrator.definitions import loading, models
from orchestrator.policies import base


class StepClock:
    """Time that advances only when the engine waits (the wait returns at once)."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.t = start
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self.t

    def wait(self, event: threading.Event, timeout_s: float) -> bool:
        if event.is_set():
            return True
        with self._lock:
            self.t += max(timeout_s, 0.001)
        return event.is_set()


@dataclass
class Policy:
    """One remediation switch: True = on (automation active)."""

    value: bool = True
    marker: base.Marker | None = None
    fail_restore: bool = False
    fail_claim: bool = False
    taken_at_claim: str | None = None  # another run marks the object between the preflight and the claim


@dataclass
class MemoryTarget:
    key: str = "memory:test"
    concurrency: int = 1
    policies: dict[str, Policy] = field(default_factory=dict)
    healthy: bool = True
    mutex: threading.Lock = field(default_factory=threading.Lock)
    locked_by: str | None = None

    def check_reachable(self) -> str | None:
        return None

    def check_permissions(self) -> str | None:
        return None

    def experiment_vars(self) -> dict[str, Any]:
        return {}

    def suspender(self, kind: str, name: str) -> base.Suspender:
        return MemorySuspender(self, name)

    def marked(self) -> list[base.Marker]:
        return [p.marker for p in self.policies.values() if p.marker is not None]

    def simulate_mitigation(self) -> str:
        self.healthy = True
        return "restarted it"

    def watch_conditions(self, conditions: Any, *, now: Callable[[], float]) -> None:
        return None

    def prepare_experiment(self) -> None:
        return None

    def units(self, policy: Any) -> list[base.Suspender]:
        return [self.suspender(policy.kind, policy.name)]

    def lock(self, *, run_id: str, deadline_at: float) -> str | None:
        if self.locked_by not in (None, run_id):
            return f"run {self.locked_by}"
        self.locked_by = run_id
        return None

    def renew_lock(self, *, run_id: str) -> str | None:
        return None if self.locked_by in (None, run_id) else f"held by run {self.locked_by}"

    def unlock(self, *, run_id: str) -> None:
        if self.locked_by == run_id:
            self.locked_by = None

    def preflight(self, suspenders: Any) -> list[str]:
        return []


class MemorySuspender:
    kind = "sandbox-autorestart"

    def __init__(self, target: MemoryTarget, name: str) -> None:
        self.target = target
        self.name = name
        self.policy = target.policies.setdefault(name, Policy())

    def snapshot(self) -> dict[str, Any]:
        return {"autorestart": self.policy.value}

    def describe(self, value: dict[str, Any]) -> str:
        return "on" if value.get("autorestart") else "off"

    def suspended_value(self) -> dict[str, Any]:
        return {"autorestart": False}

    def marker(self) -> base.Marker | None:
        return self.policy.marker

    def claim(self, marker: base.Marker) -> dict[str, Any]:
        with self.target.mutex:
            if self.policy.fail_claim:
                raise errors.PolicyError(f"{self.name}: claim failed")
            if self.policy.taken_at_claim is not None:
                holder = self.policy.taken_at_claim
                self.policy.marker = base.Marker(holder, self.name, self.kind, {"autorestart": True}, 0)
                self.policy.value = False
            current = self.policy.marker
            if current is not None and current.run_id != marker.run_id:
                raise errors.MarkerConflictError(f"{self.name} is held by run {current.run_id}")
            if current is not None:
                return dict(current.original)
            original = self.snapshot()
            self.policy.marker = base.Marker(marker.run_id, marker.policy, marker.kind, original, marker.deadline_at)
            return original

    def suspend(self, *, run_id: str) -> None:
        if self.policy.marker is None or self.policy.marker.run_id != run_id:
            raise errors.PolicyError(f"{self.name}: not claimed by {run_id}")
        self.policy.value = False

    def verify_suspended(self, *, run_id: str) -> bool:
        return not self.policy.value and self.policy.marker is not None and self.policy.marker.run_id == run_id

    def restore(self, original: dict[str, Any], *, run_id: str, force: bool = False) -> None:
        if self.policy.fail_restore:
            raise errors.PolicyError(f"{self.name}: the API refused the restore")
        if self.policy.marker is not None and self.policy.marker.run_id != run_id:
            return
        self.policy.value = bool(original["autorestart"])
        self.policy.marker = None

    def verify_restored(self, original: dict[str, Any], *, run_id: str) -> bool:
        return self.policy.value == bool(original["autorestart"]) and self.policy.marker is None


class ScriptedSession:
    """The experiment: the method makes the target unhealthy; the steady state is the target's health."""

    def __init__(
        self,
        target: MemoryTarget,
        *,
        method_gate: threading.Event | None = None,
        probe_gate: threading.Event | None = None,
    ) -> None:
        self.target = target
        self.method_gate = method_gate
        self.method_started = threading.Event()
        self.probe_gate = probe_gate  # once the fault is active, the probes hang until it is set
        self.probe_started = threading.Event()
        self.rollbacks = 0
        self.closed = False

    def steady_state(self) -> chaostoolkit.StepResult:
        if self.probe_gate is not None and not self.target.healthy:
            self.probe_started.set()
            self.probe_gate.wait(30)
        return chaostoolkit.StepResult(ok=self.target.healthy)

    def run_method(self) -> chaostoolkit.StepResult:
        self.method_started.set()
        if self.method_gate is not None:
            self.method_gate.wait(30)
        self.target.healthy = False
        return chaostoolkit.StepResult(ok=True)

    def run_rollbacks(self) -> chaostoolkit.StepResult:
        self.rollbacks += 1
        return chaostoolkit.StepResult(ok=True)

    def check_probe(self, activity: dict[str, Any]) -> chaostoolkit.StepResult:
        return chaostoolkit.StepResult(ok=True)

    def close(self) -> None:
        self.closed = True


def loaded_drill(tmp_path: Path, *, policies: int = 3, mode: str = "no-automation", **spec: Any) -> loading.LoadedDrill:
    data: dict[str, Any] = {
        "apiVersion": "drill.dev/v1alpha1",
        "kind": "Drill",
        "metadata": {"name": "memory-drill"},
        "spec": {
            "mode": mode,
            "target": {"kind": "sandbox"},
            "policies": [{"name": f"p{i}", "kind": "sandbox-autorestart"} for i in range(policies)],
            "experiment": {"path": "experiment.json"},
            "participants": [{"name": "alice", "role": "responder"}],
            "detection": {"interval": "1s", "holdWindow": "2s"},
            "guardrails": {"maxDuration": "10m"},
            **spec,
        },
    }
    experiment = {"title": "t", "description": "d", "method": [{"type": "action", "name": "kill"}]}
    drill = models.Drill.model_validate(data)
    return loading.LoadedDrill(
        path=tmp_path / "drill.yaml",
        drill=drill,
        experiment_path=tmp_path / "experiment.json",
        experiment=experiment,
        raw=data,
    )


def scripted_runner(session: ScriptedSession) -> Callable[..., ctkrun.CtkOutcome]:
    """The experiment run as chaoslib would, with drill's phases around the scripted method.

    It calls the phases from the worker thread the engine starts, exactly where chaoslib's control
    does: before the method, and after it (before the rollbacks).
    """

    def run(
        experiment: dict[str, Any], phases: ctkrun.Phases, extra_vars: dict[str, Any], log_path: Path, chaos: Any
    ) -> ctkrun.CtkOutcome:
        try:
            phases.before_method()
        except ctkrun.Interrupt:
            journal = {"status": "interrupted", "deviated": False, "rollbacks": []}
            return ctkrun.CtkOutcome(journal=journal, status="interrupted", deviated=False, method_ran=False)
        result = session.run_method()
        phases.after_method([{"activity": {"name": "kill"}, "status": "succeeded" if result.ok else "failed"}])
        undo = session.run_rollbacks()
        rollbacks = [{"activity": {"name": "undo"}, "status": "succeeded" if undo.ok else "failed"}]
        journal = {"status": "completed", "deviated": False, "rollbacks": rollbacks}
        return ctkrun.CtkOutcome(journal=journal, status="completed", deviated=False, method_ran=True)

    return run
