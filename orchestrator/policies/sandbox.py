"""The sandbox supervisor's auto-restart as a suspendable policy."""

from __future__ import annotations

from typing import Any

from orchestrator import errors
from orchestrator.policies import base
from orchestrator.sandbox import control


class SandboxAutorestart:
    """Auto-restart of the local sandbox's supervisor: suspended means off."""

    kind = "sandbox-autorestart"

    def __init__(self, client: control.SandboxClient, *, name: str) -> None:
        self._client = client
        self.name = name

    def _status(self) -> control.SandboxStatus:
        try:
            return self._client.status()
        except control.SandboxError as exc:
            raise errors.TargetError(str(exc)) from exc

    def snapshot(self) -> dict[str, Any]:
        return {"autorestart": self._status().autorestart}

    def describe(self, value: dict[str, Any]) -> str:
        return "auto-restart on" if value.get("autorestart") else "auto-restart off"

    def suspended_value(self) -> dict[str, Any]:
        return {"autorestart": False}

    def marker(self) -> base.Marker | None:
        text = self._status().annotations.get(base.MARKER_KEY)
        return base.Marker.from_json(text) if text else None

    def suspend(self, marker: base.Marker) -> None:
        try:
            self._client.set_annotation(base.MARKER_KEY, marker.to_json())
            self._client.set_autorestart(False)
        except control.SandboxError as exc:
            raise errors.PolicyError(f"{self.name}: cannot suspend auto-restart: {exc}") from exc

    def verify_suspended(self) -> bool:
        status = self._status()
        return not status.autorestart and base.MARKER_KEY in status.annotations

    def restore(self, original: dict[str, Any], *, run_id: str) -> None:
        try:
            self._client.set_autorestart(bool(original.get("autorestart", True)))
            current = self.marker()
            if current is None or current.run_id == run_id:
                self._client.delete_annotation(base.MARKER_KEY)
        except control.SandboxError as exc:
            raise errors.PolicyError(f"{self.name}: cannot restore auto-restart: {exc}") from exc

    def verify_restored(self, original: dict[str, Any], *, run_id: str) -> bool:
        status = self._status()
        text = status.annotations.get(base.MARKER_KEY)
        marker = base.Marker.from_json(text) if text else None
        ours = marker is not None and marker.run_id == run_id
        return status.autorestart == bool(original.get("autorestart", True)) and not ours
