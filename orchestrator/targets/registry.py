"""Build a target from a drill's spec, or from the key the journal stored."""

from __future__ import annotations

from pathlib import Path

from orchestrator import errors
from orchestrator.definitions import models
from orchestrator.targets import base, sandbox


def from_spec(target: models.SandboxTarget, *, default_sandbox_home: Path) -> base.Target:
    home = Path(target.home).expanduser() if target.home else default_sandbox_home
    return sandbox.SandboxTarget(home)


def from_key(key: str) -> base.Target:
    kind, _, where = key.partition(":")
    if kind == "sandbox" and where:
        return sandbox.SandboxTarget(Path(where))
    raise errors.TargetError(f"unknown target {key!r} in the journal")
