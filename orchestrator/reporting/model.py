"""The per-run report as a typed, versioned document: what ``report.json`` holds and what readers get back.

``RunReport`` is written by ``reports.build`` and read by ``load`` (the CLI's summary, ``drill
status``, the archive later). Version history:

- 1: the first report (an untyped dict with the same keys; ``mode`` a plain string).
- 2: this model. Version 1 documents load unchanged into it (the keys are the same).

A report never depends on today's drill schema: it is built from the journal's stored definition
read leniently (``DefinitionView``), so a run archived under an older or newer definition schema
still renders.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from orchestrator import durations, errors

SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)


class _Row(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)  # built on first use


class ParticipantRow(_Row):
    name: str
    role: str


class TimingRow(_Row):
    name: str
    seconds: float | None
    censored: bool
    lower_bound_s: float | None
    expected_s: float | None
    met: bool | None


class ResponderRow(_Row):
    model_config = ConfigDict(frozen=True, extra="allow", defer_build=True)  # one <timing>_s column per timing
    name: str
    hints: int = 0


class PolicyRow(_Row):
    name: str
    kind: str
    prior: dict[str, Any]
    suspended_at: str | None
    suspension_verified: bool
    restored_at: str | None
    restore_verified: bool
    state: str
    detail: str


class TimelineRow(_Row):
    at: str | None
    event: str
    actor: str
    detail: str


class NoteRow(_Row):
    at: str | None
    actor: str
    text: str


class RunReport(_Row):
    schema_version: int = SCHEMA_VERSION
    run_id: str
    drill: str
    drill_path: str
    description: str = ""
    mode: str
    failure_mode: str | None = None
    target: str
    state: str
    outcome: str | None
    abort_reason: str | None = None
    started_at: str | None
    ended_at: str | None
    generated_at: str | None
    participants: list[ParticipantRow]
    timings: list[TimingRow]
    hints_used: int
    responders: list[ResponderRow]
    policies: list[PolicyRow]
    timeline: list[TimelineRow]
    notes: list[NoteRow]

    def to_json(self) -> str:
        return self.model_dump_json(indent=2) + "\n"


def load(path: Path) -> RunReport:
    """A ``report.json`` of any readable version, or ReportError saying what is wrong with it."""
    try:
        import json

        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise errors.ReportError(f"cannot read the report {path}: {exc}") from None
    version = data.get("schema_version") if isinstance(data, dict) else None
    if version not in READABLE_VERSIONS:
        raise errors.ReportError(
            f"{path}: report schema version {version!r} is not one this drill reads ({READABLE_VERSIONS}); "
            "upgrade drill, or `drill report rebuild` it from its journal"
        )
    try:
        return RunReport.model_validate({**data, "schema_version": SCHEMA_VERSION})
    except ValidationError as exc:
        raise errors.ReportError(f"{path}: not a valid report: {exc.error_count()} problem(s)") from None


class DefinitionView:
    """The few fields of a stored drill definition a report needs, read without today's schema.

    A definition stored by another version of drill may have fields this one does not know or
    lack ones it now requires; a report of it must still render. Missing or odd values are None.
    """

    def __init__(self, definition: Mapping[str, Any]) -> None:
        metadata = definition.get("metadata")
        spec = definition.get("spec")
        self._metadata: Mapping[str, Any] = metadata if isinstance(metadata, Mapping) else {}
        self._spec: Mapping[str, Any] = spec if isinstance(spec, Mapping) else {}

    @property
    def description(self) -> str:
        value = self._metadata.get("description")
        return value if isinstance(value, str) else ""

    @property
    def failure_mode(self) -> str | None:
        value = self._spec.get("failureMode", self._spec.get("failure_mode"))
        return value if isinstance(value, str) else None

    @property
    def participants(self) -> list[ParticipantRow]:
        rows = self._spec.get("participants")
        found: list[ParticipantRow] = []
        for row in rows if isinstance(rows, list) else []:
            if isinstance(row, Mapping) and isinstance(row.get("name"), str):
                found.append(ParticipantRow(name=row["name"], role=str(row.get("role", ""))))
        return found

    @property
    def expectations(self) -> dict[str, float | None]:
        raw = self._spec.get("expectations")
        found: dict[str, float | None] = {}
        for key, value in raw.items() if isinstance(raw, Mapping) else []:
            found[str(key)] = _seconds(value)
        return found


def _seconds(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return durations.parse_duration(value)
        except ValueError:
            return None
    return None
