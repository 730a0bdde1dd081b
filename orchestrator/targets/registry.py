"""Build a target from a drill's spec, or from the key the journal stored."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from orchestrator import errors
from orchestrator.definitions import models
from orchestrator.targets import base, sandbox


def from_spec(
    target: models.SandboxTarget | models.KubernetesTarget,
    *,
    default_sandbox_home: Path,
    context: str | None = None,
) -> base.Target:
    """The target a drill file names; ``context`` (``--context``) overrides a Kubernetes target's context."""
    if isinstance(target, models.KubernetesTarget):
        from orchestrator.targets import kubernetes  # the kubernetes client loads only for Kubernetes drills

        return kubernetes.KubernetesTarget.from_spec(target, context=context)
    home = Path(target.home).expanduser() if target.home else default_sandbox_home
    return sandbox.SandboxTarget(home)


def release_lock(key: str, definition: dict[str, Any], *, run_id: str) -> None:
    """Free the target's own lock a finished run still holds (its process died); never raises."""
    spec = definition.get("spec") if isinstance(definition, dict) else None
    target = spec.get("target") if isinstance(spec, dict) else None
    if not key.startswith("kubernetes:") or not isinstance(target, dict):
        return
    from orchestrator.targets import kubernetes

    namespaces = [str(ns) for ns in target.get("namespaces") or [] if isinstance(ns, str)]
    with contextlib.suppress(Exception):
        kubernetes.KubernetesTarget(kubernetes.ref_from_key(key), namespaces=namespaces).unlock(run_id=run_id)


def from_key(key: str) -> base.Target:
    kind, _, where = key.partition(":")
    if kind == "sandbox" and where:
        return sandbox.SandboxTarget(Path(where))
    if kind == "kubernetes" and where:
        from orchestrator.targets import kubernetes

        return kubernetes.KubernetesTarget(kubernetes.ref_from_key(key))
    raise errors.TargetError(f"unknown target {key!r} in the journal")
