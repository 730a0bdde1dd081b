"""Chaos Toolkit python-provider activities for the sandbox (plain functions; chaoslib calls them by name).

Arguments arrive as strings from the experiment file, hence the conversions.
"""

from __future__ import annotations

from pathlib import Path

from orchestrator.sandbox.control import SandboxClient


def kill_service(home: str) -> dict[str, object]:
    """The fault: SIGKILL the service. Raises (a failed activity) if it is not running."""
    return {"killed_pid": SandboxClient(Path(home)).kill_service()}


def ensure_service_running(home: str, timeout: float = 10.0) -> dict[str, object]:
    """Rollback: leave the service healthy whatever the drill did; a no-op when it already is."""
    client = SandboxClient(Path(home))
    if client.healthy():
        return {"restarted": False}
    client.restart_service()
    client.wait_healthy(timeout_s=float(timeout))
    return {"restarted": True}


def service_healthy(home: str) -> bool:
    """Probe for the steady-state hypothesis."""
    return SandboxClient(Path(home)).healthy()
