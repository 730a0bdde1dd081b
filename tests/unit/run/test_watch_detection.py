"""Watched steady state: the condition evaluation (pure functions), the drill file's ``detection.conditions``,
and the responding loop driven by a scripted watch on a clock that moves only when the loop waits."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from orchestrator import errors, records
from orchestrator.adapters import chaostoolkit, kubewatch
from orchestrator.definitions import models
from orchestrator.definitions.loading import load_drill
from orchestrator.run import autorespond, responding
from tests.conftest import copy_drill
from tests.unit.run.memory import StepClock

TL = records.TimelineKind


def _deployment(replicas: int, available: int, *, generation: int = 2, observed: int = 2) -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "generation": generation},
        "spec": {"replicas": replicas},
        "status": {"availableReplicas": available, "observedGeneration": observed},
    }


def _pod(name: str, ready: bool, *, terminating: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if terminating:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta, "status": {"conditions": [{"type": "Ready", "status": str(ready)}]}}


# -- evaluation ---------------------------------------------------------------------------------------


def test_deployment_available_at_least_n_or_every_desired_replica() -> None:
    assert kubewatch.deployment_available(_deployment(3, 3), 3)[0]
    assert not kubewatch.deployment_available(_deployment(3, 2), 3)[0]
    assert kubewatch.deployment_available(_deployment(0, 5), 3)[0]  # explicit N: only the available count
    assert kubewatch.deployment_available(_deployment(3, 3), None) == (True, "3 of 3 available")
    assert not kubewatch.deployment_available(_deployment(0, 0), None)[0]  # scaled to zero serves nothing
    stale = kubewatch.deployment_available(_deployment(3, 3, generation=3, observed=2), None)
    assert stale == (False, "3 of 3 available (status not yet observed)")
    assert kubewatch.deployment_available(None, 1) == (False, "not found")
    assert not kubewatch.deployment_available({"metadata": {"name": "web"}}, 1)[0]  # no status yet


def test_pods_ready_counts_ready_pods_that_are_not_terminating() -> None:
    pods = [_pod("a", True), _pod("b", False), _pod("c", True, terminating=True), {"metadata": {"name": "d"}}]
    assert kubewatch.pods_ready(pods, 1) == (True, "1 of 4 pods Ready, at least 1 wanted")
    assert not kubewatch.pods_ready(pods, 2)[0]
    assert not kubewatch.pods_ready([], 1)[0]


def test_status_condition_of_any_object() -> None:
    obj = {"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Reconciled"}]}}
    assert kubewatch.status_condition(obj, "Ready", "True") == (True, "Ready=True (Reconciled), True wanted")
    assert not kubewatch.status_condition(obj, "Ready", "False")[0]
    assert kubewatch.status_condition({"status": {}}, "Ready", "True") == (False, "no Ready condition yet, True wanted")
    assert not kubewatch.status_condition(None, "Ready", "True")[0]


def test_the_conjunction_names_what_does_not_hold() -> None:
    web = kubewatch.Condition.deployment("shop", "web", available=2)
    pods = kubewatch.Condition.pods("shop", "app=web", ready=2)
    results = [kubewatch.evaluate(web, [_deployment(3, 3)]), kubewatch.evaluate(pods, [_pod("a", True)])]
    assert kubewatch.conjunction(results) == (False, "Pod shop (app=web): 1 of 1 pods Ready, at least 2 wanted")
    assert kubewatch.conjunction(results[:1]) == (True, "Deployment shop/web: 3 available, at least 2 wanted")
    assert kubewatch.evaluate(web, []) == (False, "Deployment shop/web: not found")


# -- the drill file -----------------------------------------------------------------------------------


def test_conditions_on_the_sandbox_are_a_definition_error_naming_the_field(tmp_path: Path) -> None:
    path = copy_drill(tmp_path, "d", detection={"conditions": [{"deployment": {"namespace": "shop", "name": "web"}}]})
    with pytest.raises(errors.DrillError, match=r"spec\.detection\.conditions: watch conditions on Kubernetes"):
        load_drill(path)


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ({}, "give exactly one of deployment"),
        ({"deployment": {"namespace": "a", "name": "b"}, "pods": {"namespace": "a", "selector": "x=y"}}, "exactly"),
        ({"pods": {"namespace": "a", "selector": "x=y"}, "availableReplicas": 2}, "availableReplicas: only with"),
        ({"deployment": {"namespace": "a", "name": "b"}, "ready": 2}, "ready: only with pods"),
        ({"object": {"apiVersion": "v1", "kind": "Pod", "namespace": "a", "name": "b"}}, "go together"),
        ({"object": {"apiVersion": "v1", "kind": "pod", "name": "b"}, "condition": {"type": "Ready"}}, "not a kind"),
    ],
)
def test_a_malformed_condition_is_refused(condition: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        models.WatchCondition.model_validate(condition)


def test_a_bare_yaml_true_is_the_status_string() -> None:
    cond = models.WatchCondition.model_validate(
        {"object": {"apiVersion": "v1", "kind": "Node", "name": "n1"}, "condition": {"type": "Ready", "status": True}}
    )
    assert cond.condition is not None and cond.condition.status == "True"


# -- the responding loop ------------------------------------------------------------------------------


class ScriptedWatch:
    """A watch whose events arrive at scripted times on a ``StepClock``; waiting moves the clock to the next one."""

    def __init__(self, clock: StepClock, events: list[tuple[float, bool]]) -> None:
        self.clock = clock
        self.events = sorted(events)
        self.current = kubewatch.State(0, False, False, None, "not listed yet", None, "")
        self.started = self.closed = False
        self.waits: list[float] = []

    def start(self) -> None:
        self.started = True

    def state(self) -> kubewatch.State:
        return self.current

    def _apply(self, at: float, holds: bool) -> None:
        old = self.current
        first = old.breached_at is None and not holds
        self.current = kubewatch.State(
            old.version + 1,
            True,
            holds,
            at,
            "web ok" if holds else "web down",
            at if first else old.breached_at,
            "web down" if first else old.breach_detail,
        )

    def wait_change(self, version: int, timeout: float) -> kubewatch.State:
        self.waits.append(timeout)
        deadline = self.clock.now() + timeout
        if self.events and self.events[0][0] <= deadline:
            at, holds = self.events.pop(0)
            self.clock.t = max(self.clock.t, at)
            self._apply(at, holds)
        else:
            self.clock.t = deadline
        return self.current

    def close(self) -> None:
        self.closed = True


class NoProbes:
    def steady_state(self) -> chaostoolkit.StepResult:
        raise AssertionError("the probes are not polled when conditions are watched")

    def check_probe(self, activity: dict[str, Any]) -> chaostoolkit.StepResult:
        raise AssertionError("no guardrails here")


def _spec(mode: str, hold: str = "2s") -> models.Spec:
    return models.Spec.model_validate(
        {
            "mode": mode,
            "target": {"kind": "kubernetes", "namespaces": ["shop"]},
            "policies": [{"name": "hpa", "kind": "hpa", "object": {"namespace": "shop", "name": "web"}}]
            if mode == "no-automation"
            else [],
            "experiment": {"path": "x.json"},
            "participants": [{"name": "alice", "role": "responder"}],
            "expectations": {"recover": "60s"} if mode == "auto-recovery" else {},
            "detection": {
                "interval": "10s",  # never used: the loop wakes on the watch
                "holdWindow": hold,
                "conditions": [{"deployment": {"namespace": "shop", "name": "web"}, "availableReplicas": 3}],
            },
            "guardrails": {"maxDuration": "5m"},
        }
    )


def _respond(
    spec: models.Spec, watch: ScriptedWatch, clock: StepClock, steps: list[autorespond.Step] | None = None
) -> tuple[responding.Result, list[tuple[str, float, dict[str, object]]]]:
    timeline: list[tuple[str, float, dict[str, object]]] = []
    commands: list[records.Event] = []

    def record(kind: records.TimelineKind, *, actor: str = "drill", at: float | None = None, **data: object) -> None:
        timeline.append((kind.value, clock.now() if at is None else at, {**data, "recorded": clock.now()}))

    def take() -> list[records.Event]:
        taken = list(commands)
        commands.clear()
        return taken

    ctx = responding.Context(
        run_id="r",
        spec=spec,
        clock=clock,
        stop=threading.Event(),
        t0=clock.now(),
        started_at=clock.now(),
        poll_s=0.2,
        probes=NoProbes(),
        take_commands=take,
        send_command=commands.append,
        timeline=record,
        action=lambda name, **kw: None,
        request_abort=lambda reason: None,
        simulate_mitigation=lambda: "scaled",
        auto_respond=steps or [],
        watch=lambda: watch,
    )
    result = responding.respond(ctx)
    assert watch.started and watch.closed
    return result, timeline


def test_breach_and_recovery_are_timed_by_the_events_not_by_the_loop() -> None:
    clock = StepClock()
    t0 = clock.now()
    watch = ScriptedWatch(clock, [(t0 + 0.03, True), (t0 + 0.41, False), (t0 + 7.337, True)])
    result, timeline = _respond(_spec("auto-recovery"), watch, clock)
    detected = next(e for e in timeline if e[0] == "detected")
    restored = next(e for e in timeline if e[0] == "steady-state-restored")
    assert detected[1] == pytest.approx(t0 + 0.41) and detected[2]["by"] == "watched conditions"
    assert restored[1] == pytest.approx(t0 + 7.337)  # the event's receipt time, not a check's
    assert restored[2]["confirmed_at"] == pytest.approx(t0 + 9.337)  # woken exactly at the end of the hold window
    assert result.restored_at == pytest.approx(t0 + 7.337)
    assert max(watch.waits) <= 0.2 + 1e-9  # never a whole detection.interval


def test_a_flap_inside_the_hold_window_restarts_it() -> None:
    clock = StepClock()
    t0 = clock.now()
    watch = ScriptedWatch(clock, [(t0 + 0.1, False), (t0 + 1.0, True), (t0 + 2.0, False), (t0 + 2.5, True)])
    _, timeline = _respond(_spec("auto-recovery"), watch, clock)
    restored = next(e for e in timeline if e[0] == "steady-state-restored")
    assert restored[1] == pytest.approx(t0 + 2.5)
    assert restored[2]["confirmed_at"] == pytest.approx(t0 + 4.5)


def test_no_automation_the_responder_mitigates_and_the_event_times_the_restore() -> None:
    clock = StepClock()
    t0 = clock.now()
    watch = ScriptedWatch(clock, [(t0 + 0.05, False), (t0 + 3.12, True)])
    steps = [autorespond.Step(records.Command.MITIGATED, 3.0), autorespond.Step(records.Command.RESOLVE, 5.0)]
    result, timeline = _respond(_spec("no-automation", hold="1s"), watch, clock, steps)
    names = [e[0] for e in timeline]
    assert names == ["detected", "mitigated", "steady-state-restored", "resolved"]
    assert timeline[2][1] == pytest.approx(t0 + 3.12)
    assert result.resolved and result.restored_at == pytest.approx(t0 + 3.12)


def test_unseen_recovery_is_said_so() -> None:
    clock = StepClock()
    t0 = clock.now()
    watch = ScriptedWatch(clock, [(t0 + 0.02, True)])
    _, timeline = _respond(_spec("auto-recovery", hold="1s"), watch, clock)
    assert [e[0] for e in timeline] == ["steady-state-restored", "note"]
    assert timeline[0][2]["breach_seen"] is False
    assert "watch's first list" in str(timeline[1][2]["text"])
