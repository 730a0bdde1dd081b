"""The local sandbox as a drill target."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from orchestrator import errors
from orchestrator.definitions import models
from orchestrator.policies import base
from orchestrator.policies import sandbox as sandbox_policy
from orchestrator.sandbox import control


class SandboxTarget:
    def __init__(self, home: Path) -> None:
        self.home = home.resolve()
        self.key = f"sandbox:{self.home}"
        self.concurrency = 1  # one supervisor, one policy
        self.client = control.SandboxClient(self.home)

    def check_reachable(self) -> str | None:
        try:
            self.client.status()
        except control.SandboxError as exc:
            return f"sandbox unreachable: {exc}"
        return None

    def check_permissions(self) -> str | None:
        if not os.access(self.home, os.W_OK):
            return f"no write access to the sandbox folder {self.home}"
        return None

    def prepare_experiment(self) -> None:
        return None  # the sandbox's experiment reaches it by URL (experiment_vars)

    def experiment_vars(self) -> dict[str, Any]:
        vars_: dict[str, Any] = {"sandbox_home": str(self.home)}
        with contextlib.suppress(control.SandboxError):
            vars_["sandbox_url"] = self.client.status().url
        return vars_

    def suspender(self, kind: str, name: str) -> base.Suspender:
        if kind != sandbox_policy.SandboxAutorestart.kind:
            raise errors.PolicyError(f"policy kind {kind!r} does not apply to the sandbox target")
        return sandbox_policy.SandboxAutorestart(self.client, name=name)

    def units(self, policy: models.SandboxAutorestartPolicy | models.KubernetesPolicy) -> list[base.Suspender]:
        return [self.suspender(policy.kind, policy.name)]

    def lock(self, *, run_id: str, deadline_at: float) -> str | None:
        return None  # one folder on one machine: the journal's target lock is the lock

    def renew_lock(self, *, run_id: str) -> str | None:
        return None

    def unlock(self, *, run_id: str) -> None:
        return None

    def preflight(self, suspenders: Sequence[base.Suspender]) -> list[str]:
        return []

    def marked(self) -> list[base.Marker]:
        try:
            status = self.client.status()
        except control.SandboxError as exc:
            raise errors.TargetError(f"cannot read the markers of {self.key}: {exc}") from exc
        text = status.annotations.get(base.MARKER_KEY)
        marker = base.Marker.from_json(text) if text else None
        return [marker] if marker else []

    def simulate_mitigation(self) -> str:
        try:
            self.client.restart_service()
        except control.SandboxError as exc:
            raise errors.TargetError(f"cannot restart the sandbox service: {exc}") from exc
        return "ran `drill sandbox restart`"

    def watch_conditions(self, conditions: Sequence[models.WatchCondition], *, now: Callable[[], float]) -> None:
        return None  # the sandbox's steady state is the experiment's probes
