"""The suspender contract and the marker every suspended object carries.

A marker is written on the object itself *before* the mutation, with the run id, the original
value and a deadline, so anyone with access can restore it from any machine, even without
the journal. Claiming the object (writing the marker) and reading the value to restore are ONE
atomic step on the object (``Suspender.claim``), refused when another run's marker is there:
two runs started together can never record each other's suspended value as their prior.
Every implementation passes ``tests/unit/policies/test_contract.py``.
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
    instance: str = ""
    """The identity of the object it was claimed on (the sandbox supervisor's instance id; a Kubernetes uid)."""

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
                instance=str(data.get("instance") or ""),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return None


def conflict_message(name: str, where: str, holder: str) -> str:
    """The refusal every suspender gives when another run's marker is on the object."""
    if not holder:
        return f"{name}: {where} carries an annotation under {MARKER_KEY} that is not a drill marker; remove it by hand"
    return (
        f"{name}: {where} carries a marker from run {holder}; if that run is over, `drill restore {holder}` restores it"
    )


class Suspender(Protocol):
    """One policy on one target. Methods raise ``errors.PolicyError`` / ``errors.TargetError``."""

    kind: str
    name: str

    def snapshot(self) -> dict[str, Any]:
        """The policy's current value. Reads only (plans, reports); the prior to restore comes from ``claim``."""
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

    def claim(self, marker: Marker) -> dict[str, Any]:
        """ONE atomic step on the object: write ``marker`` with ``original`` = the value read in that same step,
        and return that original.

        ``marker.original`` is ignored (pass ``{}``). Refused with ``errors.MarkerConflictError`` naming the holder
        when another run's marker is there (nothing is written). Idempotent for the same run id: returns the
        original its own marker recorded.
        """
        ...

    def suspend(self, *, run_id: str) -> None:
        """Apply the suspended value, only while this run's marker is on the object (else ``errors.PolicyError``;
        ``errors.MarkerConflictError`` when it is another run's). Idempotent."""
        ...

    def verify_suspended(self, *, run_id: str) -> bool:
        """Read back: is it suspended and marked by this run, on the object that was claimed?"""
        ...

    def restore(self, original: dict[str, Any], *, run_id: str, force: bool = False) -> None:
        """Put ``original`` back and remove this run's marker, in one step. Idempotent; no marker: nothing to do.

        Never clobbers another run's marker or value: raises ``errors.MarkerConflictError`` naming the holder.
        Where someone else changed a suspended field meanwhile, ``errors.RestoreConflictError`` and nothing
        written, unless ``force`` (the person running ``drill restore --force`` decided to overwrite it).
        """
        ...

    def verify_restored(self, original: dict[str, Any], *, run_id: str) -> bool:
        """Read back: is the value ``original`` and this run's marker gone?

        Raises ``errors.PolicyError`` when the object answering is not the one that was claimed.
        """
        ...
