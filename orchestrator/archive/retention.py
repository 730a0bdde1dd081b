"""Skill retention: for each person of the roster and each catalogued failure mode, how long since they practised it.

``build(index, catalog, as_of=...)`` reads the archive index and returns a ``RetentionReport``, a typed,
versioned, JSON-serialisable document that states its own definitions (``definitions``):

- **practice**: being a ``responder`` in a ``no-automation`` run of the failure mode whose outcome is
  ``unaided`` (practised unaided) or ``with hints`` (practised with hints); timed-out and aborted runs,
  facilitators and observers are not practice. Days since = whole days from the run's start to ``as_of``.
- **status** (of the latest practice of either kind): green < 90 days, amber 90-180, red > 180, never.
- **current**: the latest practice is fewer than ``window_days`` whole days old (default 90: current = green).
- **readiness** (per critical failure mode): ready when at least 2 people of the roster are current and at
  least 80% of the roster is current (DESIGN.md).
- **trend** (per person per quarter): for every run the person responded to whose ``mitigate`` timing
  (t0 -> steady state holds again) was measured, that timing divided by the median ``mitigate`` of all
  measured ``no-automation`` runs of the same failure mode up to ``as_of``; the quarter's figure is the
  median of those ratios (1.0 = as fast as usual for the scenario, below 1 faster).

People outside the roster who took part are listed in ``not_in_roster`` and left out of the matrix and readiness.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from orchestrator.adapters import archivequeries
from orchestrator.archive import indexing, windows
from orchestrator.definitions import catalog as catalog_

SCHEMA_VERSION = 1
DEFAULT_WINDOW_DAYS = windows.GREEN_BELOW_DAYS
MIN_CURRENT_PEOPLE = 2
MIN_CURRENT_SHARE = 0.8
TREND_TIMING = "mitigate"


class _Doc(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Definitions(_Doc):
    practice: str = (
        "a responder in a no-automation run of the failure mode whose outcome is 'unaided' or 'with hints'; "
        "timed-out and aborted runs, facilitators and observers do not count"
    )
    unaided: str = "the run's outcome is 'unaided' (no hint revealed)"
    with_hints: str = "the run's outcome is 'with hints' (counted apart from unaided)"
    days: str = "whole days, rounded down, from the run's start (started_at) to as_of; runs after as_of are ignored"
    status: str = "of the latest practice of either kind: green < 90 days, amber 90-180 (inclusive), red > 180, never"
    green_below_days: int = windows.GREEN_BELOW_DAYS
    red_above_days: int = windows.RED_ABOVE_DAYS
    window_days: int
    current: str = "the latest practice (unaided or with hints) is fewer than window_days whole days old"
    readiness: str = (
        "per critical failure mode: ready when at least min_current_people people of the roster are current "
        "and at least min_current_share of the roster is current"
    )
    min_current_people: int = MIN_CURRENT_PEOPLE
    min_current_share: float = MIN_CURRENT_SHARE
    trend_timing: str = TREND_TIMING
    trend: str = (
        "per person per calendar quarter (UTC) of the run's start: the median, over the no-automation runs the "
        "person responded to with a measured mitigate timing (t0 -> steady state holds again), of that timing "
        "divided by the median mitigate of all measured no-automation runs of the same failure mode up to as_of; "
        "below 1 is faster than usual, censored (timed-out) timings are left out"
    )


class Cell(_Doc):
    """One person x one failure mode (``RetentionReport.cells()`` yields them; the document stores rows)."""

    person: str
    failure_mode: str
    days_unaided: int | None
    days_with_hints: int | None
    days: int | None
    status: str
    unaided_runs: int
    with_hints_runs: int


class PersonRow(_Doc):
    """One person of the roster: one column per failure mode, in the order of ``RetentionReport.failure_modes``."""

    person: str
    green: int
    amber: int
    red: int
    never: int
    practised_modes: int
    days_unaided: list[int | None]
    days_with_hints: list[int | None]
    days: list[int | None]
    status: list[str]
    unaided_runs: list[int]
    with_hints_runs: list[int]


class TrendPoint(_Doc):
    person: str
    quarter: str
    runs: int
    with_hints: int
    ratio: float


class Readiness(_Doc):
    failure_mode: str
    severity: str
    roster: int
    current: int
    current_unaided: int
    share: float
    ready: bool
    current_people: list[str]


class FailureModeRow(_Doc):
    key: str
    severity: str
    critical: bool
    median_mitigate_s: float | None
    measured_runs: int


class RetentionReport(_Doc):
    schema_version: int = SCHEMA_VERSION
    kind: Literal["skill-retention"] = "skill-retention"
    as_of: str
    definitions: Definitions
    roster: list[str]
    failure_modes: list[FailureModeRow]
    people: list[PersonRow]
    trend: list[TrendPoint]
    readiness: list[Readiness]
    not_in_roster: list[str]
    uncatalogued_failure_modes: list[str]

    def to_json(self) -> str:
        """Compact JSON (a large roster x catalog matrix is megabytes indented)."""
        return self.model_dump_json() + "\n"

    def cells(self) -> Iterator[Cell]:
        """Every person x failure mode, roster order then catalog order."""
        for row in self.people:
            for i, mode in enumerate(self.failure_modes):
                yield Cell(
                    person=row.person,
                    failure_mode=mode.key,
                    days_unaided=row.days_unaided[i],
                    days_with_hints=row.days_with_hints[i],
                    days=row.days[i],
                    status=row.status[i],
                    unaided_runs=row.unaided_runs[i],
                    with_hints_runs=row.with_hints_runs[i],
                )


def _latest(days: int | None, candidate: int) -> int:
    return candidate if days is None else min(days, candidate)


def build(
    index: indexing.Index,
    catalog: catalog_.Catalog | None,
    *,
    as_of: datetime,
    window_days: int = DEFAULT_WINDOW_DAYS,
) -> RetentionReport:
    """The skill-retention report of the archive ``index`` against ``catalog`` (None: the index's catalog)."""
    if window_days < 1:
        raise ValueError("window_days must be at least 1")
    read = windows.read_catalog(index, catalog)
    as_of_s = as_of.timestamp()
    runs = archivequeries.human_runs(index, until_s=as_of_s)
    people_rows = archivequeries.human_participants(index, until_s=as_of_s)
    modes = {m.key: m for m in read.modes}
    roster = set(read.roster)

    by_run = {r["run_id"]: r for r in runs}
    measured: dict[str, list[float]] = defaultdict(list)
    for r in runs:
        if r["failure_mode"] in modes and r["seconds"] is not None and not r["censored"]:
            measured[r["failure_mode"]].append(float(r["seconds"]))
    medians = {key: statistics.median(values) for key, values in measured.items()}

    # (person, mode) -> [days unaided, days with hints, unaided runs, with-hints runs]
    seen: dict[tuple[str, str], list[int | None]] = {}
    ratios: dict[tuple[str, str], list[float]] = defaultdict(list)
    hinted: dict[tuple[str, str], int] = defaultdict(int)
    outsiders: set[str] = set()
    uncatalogued: set[str] = set()
    for p in people_rows:
        if p["role"] != "responder":
            continue
        run = by_run[p["run_id"]]
        key = run["failure_mode"]
        if key not in modes:
            if key is not None:
                uncatalogued.add(key)
            continue
        person = p["name"]
        if person not in roster:
            outsiders.add(person)
            continue
        outcome = run["outcome"]
        if outcome in windows.PRACTICE_OUTCOMES:
            days = windows.days_since(run["started_s"], as_of_s)
            cell = seen.setdefault((person, key), [None, None, 0, 0])
            slot = 0 if outcome == windows.UNAIDED else 1
            cell[slot] = _latest(cell[slot], days)
            cell[slot + 2] = int(cell[slot + 2] or 0) + 1
        median = medians.get(key)
        if run["seconds"] is not None and not run["censored"] and median:
            point = (person, windows.quarter(run["started_s"]))
            ratios[point].append(float(run["seconds"]) / median)
            hinted[point] += outcome == windows.WITH_HINTS

    position = {m.key: i for i, m in enumerate(read.modes)}
    practised: dict[str, list[tuple[int, list[int | None]]]] = defaultdict(list)
    for (person, key), found in seen.items():
        practised[person].append((position[key], found))
    rows: list[PersonRow] = []
    current: dict[str, list[tuple[str, bool]]] = defaultdict(list)
    width = len(read.modes)
    for person in read.roster:
        unaided_days: list[int | None] = [None] * width
        hints_days: list[int | None] = [None] * width
        latest_days: list[int | None] = [None] * width
        colours = ["never"] * width
        unaided_runs, hints_runs = [0] * width, [0] * width
        counts = {"green": 0, "amber": 0, "red": 0, "never": width}
        for i, (unaided, with_hints, n_unaided, n_hints) in sorted(practised.get(person, [])):
            latest = min(d for d in (unaided, with_hints) if d is not None)
            colour = windows.status(latest)
            unaided_days[i], hints_days[i], latest_days[i], colours[i] = unaided, with_hints, latest, colour
            unaided_runs[i], hints_runs[i] = int(n_unaided or 0), int(n_hints or 0)
            counts[colour] += 1
            counts["never"] -= 1
            if latest < window_days:
                current[read.modes[i].key].append((person, unaided is not None and unaided < window_days))
        rows.append(
            PersonRow(
                person=person,
                practised_modes=width - counts["never"],
                days_unaided=unaided_days,
                days_with_hints=hints_days,
                days=latest_days,
                status=colours,
                unaided_runs=unaided_runs,
                with_hints_runs=hints_runs,
                **counts,
            )
        )

    size = len(read.roster)
    readiness = []
    for mode in read.modes:
        if mode.severity != catalog_.Severity.CRITICAL.value:
            continue
        now_current = current.get(mode.key, [])
        n = len(now_current)
        readiness.append(
            Readiness(
                failure_mode=mode.key,
                severity=mode.severity,
                roster=size,
                current=n,
                current_unaided=sum(1 for _, unaided in now_current if unaided),
                share=round(n / size, 4) if size else 0.0,
                ready=n >= MIN_CURRENT_PEOPLE and n * 10 >= size * round(MIN_CURRENT_SHARE * 10),
                current_people=[name for name, _ in now_current],
            )
        )
    trend = [
        TrendPoint(
            person=person,
            quarter=q,
            runs=len(values),
            with_hints=hinted[(person, q)],
            ratio=round(statistics.median(values), 4),
        )
        for (person, q), values in sorted(ratios.items())
    ]
    return RetentionReport(
        as_of=windows.iso(as_of),
        definitions=Definitions(window_days=window_days),
        roster=list(read.roster),
        failure_modes=[
            FailureModeRow(
                key=m.key,
                severity=m.severity,
                critical=m.severity == catalog_.Severity.CRITICAL.value,
                median_mitigate_s=None if m.key not in medians else round(medians[m.key], 3),
                measured_runs=len(measured.get(m.key, [])),
            )
            for m in read.modes
        ],
        people=rows,
        trend=trend,
        readiness=readiness,
        not_in_roster=sorted(outsiders),
        uncatalogued_failure_modes=sorted(uncatalogued),
    )
