"""The suspender contract and the marker every suspended object carries.

A marker is written on the object itself *before* the mutation, with the run id, the original
value and a deadline, so anyone with access can restore it from any machine, even without
the journal. Every implementation passes ``tests/unit/policies/test_contract.py``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, Protocol

MARKER_KEY = "drill.dev/suspension"


@dataclass(frozen=True)
class Marker:
    """What a suspended object says about who suspended it and how to undo it."""

    run_id: str
    policy: str
    kind: str
    original: dict[str, Any]
    deadline_at: float

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Marker | None:
        """The marker in ``text``, or None when it is not one of ours (never raises on foreign data)."""
        try:
            data = json.loads(text)
            return cls(
                run_id=str(data["run_id"]),
                policy=str(data["policy"]),
                kind=str(data["kind"]),
                original=dict(data["original"]),
                deadline_at=float(data["deadline_at"]),
            )
        except (ValueError, KeyError, TypeError):
            return None


class Suspender(Protocol):
    """One policy on one target. Methods raise ``errors.PolicyError`` / ``errors.TargetError``."""

    kind: str
    name: str

    def snapshot(self) -> dict[str, Any]:
        """The policy's current value: what restore must put back. Reads only."""
        ...

    def describe(self, value: dict[str, Any]) -> str:
        """A value in words, for plans and reports (``auto-restart on``)."""
        ...

    def suspended_value(self) -> dict[str, Any]:
        """The value while suspended."""
        ...

    def marker(self) -> Marker | None:
        """The marker on the object now, if any."""
        ...

    def suspend(self, marker: Marker) -> None:
        """Write the marker, then suspend. Idempotent."""
        ...

    def verify_suspended(self) -> bool:
        """Read back: is it suspended and marked?"""
        ...

    def restore(self, original: dict[str, Any], *, run_id: str) -> None:
        """Put ``original`` back and remove this run's marker (another run's marker is left alone). Idempotent."""
        ...

    def verify_restored(self, original: dict[str, Any], *, run_id: str) -> bool:
        """Read back: is the value ``original`` and this run's marker gone?"""
        ...
