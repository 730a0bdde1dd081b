"""``drill report retention|coverage``: the cross-drill reports, from the archive index (read only).

Both read the index (``$DRILL_INDEX_URL`` or ``<archive>/index.db``) and the catalog: ``--catalog DIR``,
else ``drills/catalog`` when it exists, else the catalog the index was last rebuilt with. ``--json`` prints
the report document (typed and versioned, its definitions inside); without it, a summary for people.
``--as-of DATE`` reports as of the end of that day (UTC; or an ISO date-time), ``--window-days N`` sets
the window (retention: who is current; coverage: how fresh a verification must be), 90 by default.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from orchestrator import errors
from orchestrator.archive import coverage as coverage_
from orchestrator.archive import indexing, windows
from orchestrator.archive import retention as retention_
from orchestrator.cli import context
from orchestrator.definitions import catalog as catalog_

T = TypeVar("T")

DEFAULT_CATALOG = Path("drills") / "catalog"


def _catalog(args: argparse.Namespace) -> catalog_.Catalog | None:
    folder = getattr(args, "catalog", None)
    if folder:
        return catalog_.load_catalog(Path(folder))
    return catalog_.load_catalog(DEFAULT_CATALOG) if DEFAULT_CATALOG.is_dir() else None


def _window(args: argparse.Namespace) -> int:
    days = getattr(args, "window_days", None)
    if days is None:
        return windows.GREEN_BELOW_DAYS
    if not isinstance(days, int) or days < 1:
        raise errors.ReportError(f"--window-days {days!r}: give a whole number of days, at least 1")
    return days


def _built(args: argparse.Namespace, build: Callable[..., T]) -> T:
    """A cross-drill report over the archive's index (read-only), with the command line's as-of, window, catalog."""
    as_of = windows.parse_as_of(getattr(args, "as_of", None))
    window = _window(args)
    catalog = _catalog(args)
    index = indexing.open_index(context.paths(args).archive, read_only=True)
    try:
        return build(index, catalog, as_of=as_of, window_days=window)
    finally:
        index.close()


def _days(value: int | None) -> str:
    return "never" if value is None else f"{value} d"


def retention(args: argparse.Namespace) -> int:
    """``drill report retention``: person x failure mode, days since practice; readiness; trend."""
    report = _built(args, retention_.build)
    if getattr(args, "json", False):
        print(report.to_json(), end="")
        return 0
    d = report.definitions
    print(f"skill retention as of {report.as_of} (schema {report.schema_version})")
    print(f"  practice: {d.practice}")
    print(f"  status: {d.status}; current: practised fewer than {d.window_days} days ago")
    print(f"readiness (critical failure modes; ready = >= {d.min_current_people} people and >= 80% of the roster):")
    for r in report.readiness:
        verdict = "READY" if r.ready else "not ready"
        print(
            f"  {r.failure_mode:40} {r.current:3}/{r.roster} current ({r.share:.0%}), "
            f"{r.current_unaided} unaided  {verdict}"
        )
    if not report.readiness:
        print("  (no critical failure modes in the catalog)")
    latest: dict[str, retention_.TrendPoint] = {t.person: t for t in report.trend}
    print(
        f"people (green/amber/red/never of {len(report.failure_modes)} failure modes; latest {d.trend_timing} ratio):"
    )
    for p in report.people:
        point = latest.get(p.person)
        trend = f"  {point.quarter} x{point.ratio:.2f} ({point.runs} runs)" if point else ""
        print(f"  {p.person:24} {p.green:3} {p.amber:3} {p.red:3} {p.never:3}{trend}")
    if report.not_in_roster:
        print(f"took part but not in the roster: {', '.join(report.not_in_roster)}")
    return 0


def coverage(args: argparse.Namespace) -> int:
    """``drill report coverage``: claimed automation against verified auto-recovery, with red flags."""
    report = _built(args, coverage_.build)
    if getattr(args, "json", False):
        print(report.to_json(), end="")
        return 0
    s, d = report.summary, report.definitions
    weights = ", ".join(f"{k} {v}" for k, v in d.weights.items())
    print(f"auto-recovery coverage as of {report.as_of} (schema {report.schema_version})")
    print(f"  verified: {d.verified} (window {d.window_days} days); weights: {weights}")
    print(f"  claimed  {s.claimed}/{s.failure_modes} ({s.claimed_share:.0%}), weighted {s.claimed_weighted_share:.0%}")
    print(
        f"  verified {s.verified}/{s.failure_modes} ({s.verified_share:.0%}), weighted {s.verified_weighted_share:.0%}"
        f"; {s.verified_claimed} of {s.claimed} claimed ({s.verified_of_claimed_share:.0%})"
    )
    for m in report.failure_modes:
        check = m.last_verification
        checked = (
            ("never verified" if m.claimed else "no verification run")
            if check is None
            else f"{check.result} {_days(check.days)} ago, "
            f"{'-' if check.recover_s is None else f'{check.recover_s:.0f}s'}/{check.target_s:.0f}s"
        )
        human = "no human drill" if m.last_human_drill is None else f"human {_days(m.last_human_drill.days)} ago"
        claim = m.automation_name or "no automation"
        flags = f"  [{', '.join(m.red_flags)}]" if m.red_flags else ""
        print(f"  {m.key:40} {m.severity:8} {claim:28} {checked}; {human}{flags}")
    print(f"red flags: {', '.join(f'{k} {v}' for k, v in s.flags.items() if v) or 'none'}")
    return 0
