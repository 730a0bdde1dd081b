"""The kubeconfig credential refresh hook runs at most once per period (the client library calls it per request)."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.adapters import kube


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


class Cfg:
    """What the kubeconfig loader's hook does to a configuration: re-applies it, and installs a new hook."""

    def __init__(self) -> None:
        self.runs: list[int] = []
        self.refresh_api_key_hook: Any = self._hook(0)

    def _hook(self, generation: int) -> Any:
        def refresh(cfg: Cfg) -> None:
            cfg.runs.append(generation)
            cfg.refresh_api_key_hook = self._hook(generation + 1)

        return refresh


def test_runs_first_then_once_per_period_and_follows_the_hook_the_loader_installs() -> None:
    cfg, clock = Cfg(), Clock()
    kube.throttle_refresh(cfg, every_s=10.0, now=clock)
    for _ in range(50):
        cfg.refresh_api_key_hook(cfg)
    assert cfg.runs == [0]
    clock.t += 9.9
    cfg.refresh_api_key_hook(cfg)
    assert cfg.runs == [0]
    clock.t += 0.1
    for _ in range(5):
        cfg.refresh_api_key_hook(cfg)
    assert cfg.runs == [0, 1]  # the hook the first run installed, still throttled


def test_a_failing_refresh_is_tried_again_on_the_next_request() -> None:
    clock = Clock()
    attempts: list[float] = []

    class Flaky:
        def __init__(self) -> None:
            self.refresh_api_key_hook: Any = self.refresh

        def refresh(self, cfg: Any) -> None:
            attempts.append(clock.t)
            if len(attempts) == 1:
                raise RuntimeError("exec plugin failed")

    cfg = Flaky()
    kube.throttle_refresh(cfg, every_s=10.0, now=clock)
    with pytest.raises(RuntimeError):
        cfg.refresh_api_key_hook(cfg)
    cfg.refresh_api_key_hook(cfg)  # not throttled: the failed attempt did not count
    cfg.refresh_api_key_hook(cfg)  # throttled now
    assert len(attempts) == 2
