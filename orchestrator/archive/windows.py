"""What the cross-drill reports share: whole days, the status colours, quarters, and the catalog as they read it.

- **days since** a run = whole days (rounded down) from the run's start (``started_at``) to ``as_of``;
  runs that started after ``as_of`` do not exist for a report made as of that moment.
- **status** (DESIGN.md, Reports): green when days < 90, amber when 90 <= days <= 180, red when days > 180,
  ``never`` when there is no such run at all.
- **quarter**: the calendar quarter (UTC) of the run's start, e.g. ``2026-Q1``.
- **practice / human drill**: a ``no-automation`` run whose outcome is ``unaided`` or ``with hints``
  (timed-out and aborted runs are not counted: nobody handled the failure).

The catalog comes from a loaded ``Catalog`` or, without one, from the catalog the index was rebuilt with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from orchestrator import errors
from orchestrator.archive import indexing
from orchestrator.definitions import catalog as catalog_

DAY_S = 86_400.0
GREEN_BELOW_DAYS = 90
RED_ABOVE_DAYS = 180
UNAIDED = "unaided"
WITH_HINTS = "with hints"
PRACTICE_OUTCOMES = (UNAIDED, WITH_HINTS)


def days_since(started_s: float, as_of_s: float) -> int:
    """Whole days (rounded down) from ``started_s`` to ``as_of_s``; never negative."""
    return max(0, math.floor((as_of_s - started_s) / DAY_S))


def status(days: int | None) -> str:
    """green < 90, amber 90-180 (both ends included), red > 180, never."""
    if days is None:
        return "never"
    if days < GREEN_BELOW_DAYS:
        return "green"
    if days <= RED_ABOVE_DAYS:
        return "amber"
    return "red"


def quarter(started_s: float) -> str:
    when = datetime.fromtimestamp(started_s, UTC)
    return f"{when.year}-Q{(when.month - 1) // 3 + 1}"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_as_of(text: str | None, *, now: datetime | None = None) -> datetime:
    """``--as-of``: a date (the end of that day, UTC: the day counts whole) or an ISO date-time; default now."""
    if text is None:
        return (now or datetime.now(UTC)).astimezone(UTC)
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC) - timedelta(microseconds=1)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise errors.ReportError(f"--as-of {text!r}: give a date (2026-03-31) or an ISO date-time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Mode:
    """One catalogued failure mode, as the reports read it."""

    key: str
    service: str
    severity: str
    automation_kind: str
    automation_name: str | None
    recovery_target_s: float

    @property
    def claimed(self) -> bool:
        return self.automation_kind != catalog_.AutomationKind.NONE.value


@dataclass(frozen=True)
class Catalog:
    modes: tuple[Mode, ...]
    roster: tuple[str, ...]


def read_catalog(index: indexing.Index, catalog: catalog_.Catalog | None) -> Catalog:
    """The failure modes (sorted by key) and roster (sorted by name), from ``catalog`` or else the index."""
    if catalog is not None:
        modes = tuple(
            Mode(
                key=key,
                service=mode.service,
                severity=mode.severity.value,
                automation_kind=mode.automation.kind.value,
                automation_name=mode.automation.name,
                recovery_target_s=float(mode.recovery_target),
            )
            for key, mode in sorted(catalog.failure_modes.items())
        )
        return Catalog(modes=modes, roster=tuple(sorted(p.name for p in catalog.people)))
    rows = index.rows("archive_failure_modes")
    modes = tuple(
        Mode(
            key=str(r["key"]),
            service=str(r["service"]),
            severity=str(r["severity"]),
            automation_kind=str(r["automation_kind"]),
            automation_name=r["automation_name"],
            recovery_target_s=float(r["recovery_target_s"]),
        )
        for r in rows
    )
    roster = tuple(str(r["name"]) for r in index.rows("archive_people"))
    if not modes:
        raise errors.ReportError(
            "the archive index holds no catalog; give --catalog DIR or `drill report rebuild --catalog DIR`"
        )
    return Catalog(modes=modes, roster=roster)
