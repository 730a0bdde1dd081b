"""The sandbox supervisor's auto-restart as a suspendable policy.

Its value is ``{"autorestart": bool, "instance": str}``: the instance is the supervisor's identity (kept in its
state), so a value read from one supervisor never "verifies" against another that answers for the same folder.
The claim, the guarded suspend and the release are each one step under the supervisor's lock.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NoReturn

from orchestrator import errors
from orchestrator.policies import base
from orchestrator.sandbox import control


class SandboxAutorestart:
    """Auto-restart of the local sandbox's supervisor: suspended means off."""

    kind = "sandbox-autorestart"

    def __init__(self, client: control.SandboxClient, *, name: str) -> None:
        self._client = client
        self.name = name
        self._claimed: dict[str, str] = {}  # run id -> instance it claimed, for checks before the marker is read

    @property
    def _where(self) -> str:
        return f"sandbox {self._client.home}"

    def _status(self) -> control.SandboxStatus:
        try:
            return self._client.status()
        except control.SandboxError as exc:
            raise errors.TargetError(str(exc)) from exc

    def _check_instance(
        self, status: control.SandboxStatus, expected: str, *, run_id: str, error: type[Exception]
    ) -> None:
        if expected and status.instance != expected:
            raise error(
                f"{self.name}: the supervisor answering for {self._where} is instance {status.instance or '?'} "
                f"(pid {status.supervisor_pid}), not instance {expected} that run {run_id} claimed; "
                "refusing to verify against a different supervisor"
            )

    def _fail(self, action: str, exc: control.SandboxError) -> NoReturn:
        if isinstance(exc, control.SandboxConflictError):
            raise errors.MarkerConflictError(base.conflict_message(self.name, self._where, exc.holder)) from exc
        raise errors.PolicyError(f"{self.name}: cannot {action} auto-restart: {exc}") from exc

    def snapshot(self) -> dict[str, Any]:
        status = self._status()
        return {"autorestart": status.autorestart, "instance": status.instance}

    def describe(self, value: dict[str, Any]) -> str:
        return "auto-restart on" if value.get("autorestart") else "auto-restart off"

    def suspended_value(self) -> dict[str, Any]:
        return {"autorestart": False}

    def marker(self) -> base.Marker | None:
        text = self._status().annotations.get(base.MARKER_KEY)
        return base.Marker.from_json(text) if text else None

    def claim(self, marker: base.Marker) -> dict[str, Any]:
        fields = base.Marker(
            run_id=marker.run_id,
            policy=marker.policy,
            kind=marker.kind,
            original={},  # the supervisor fills it with the value it reads under the same lock
            deadline_at=marker.deadline_at,
        )
        try:
            claim = self._client.claim(base.MARKER_KEY, dataclasses.asdict(fields))
        except control.SandboxUnreachable as exc:
            raise errors.TargetError(str(exc)) from exc
        except control.SandboxError as exc:
            self._fail("claim", exc)
        original = dict(claim.original)
        self._claimed[marker.run_id] = str(original.get("instance", ""))
        return original

    def suspend(self, *, run_id: str) -> None:
        try:
            self._client.set_autorestart(False, guard=(base.MARKER_KEY, run_id))
        except control.SandboxConflictError as exc:
            if not exc.holder:
                raise errors.PolicyError(
                    f"{self.name}: {self._where} carries no marker of run {run_id}: claim it before suspending"
                ) from exc
            self._fail("suspend", exc)
        except control.SandboxError as exc:
            self._fail("suspend", exc)

    def verify_suspended(self, *, run_id: str) -> bool:
        status = self._status()
        text = status.annotations.get(base.MARKER_KEY)
        marker = base.Marker.from_json(text) if text else None
        ours = marker is not None and marker.run_id == run_id
        expected = self._claimed.get(run_id) or (marker.instance if marker is not None and ours else "")
        self._check_instance(status, expected, run_id=run_id, error=errors.PolicyError)
        return ours and not status.autorestart

    def restore(self, original: dict[str, Any], *, run_id: str, force: bool = False) -> None:
        # force changes nothing here: the supervisor's one field has no concurrent writer but drill
        instance = str(original.get("instance") or self._claimed.get(run_id, ""))
        try:
            self._client.release(
                base.MARKER_KEY, run_id=run_id, autorestart=bool(original.get("autorestart", True)), instance=instance
            )
        except control.SandboxInstanceError as exc:
            raise errors.PolicyError(
                f"{self.name}: the supervisor answering for {self._where} is instance {exc.instance}, not instance "
                f"{instance} that run {run_id} claimed; nothing restored there"
            ) from exc
        except control.SandboxUnreachable as exc:
            raise errors.TargetError(f"{self.name}: cannot restore auto-restart: {exc}") from exc
        except control.SandboxError as exc:
            self._fail("restore", exc)

    def verify_restored(self, original: dict[str, Any], *, run_id: str) -> bool:
        status = self._status()
        expected = str(original.get("instance") or self._claimed.get(run_id, ""))
        self._check_instance(status, expected, run_id=run_id, error=errors.RestoreVerificationError)
        text = status.annotations.get(base.MARKER_KEY)
        marker = base.Marker.from_json(text) if text else None
        ours = marker is not None and marker.run_id == run_id
        return status.autorestart == bool(original.get("autorestart", True)) and not ours
