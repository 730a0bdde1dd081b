"""Auto-recovery coverage: the catalog's claimed automation against the archive's ``auto-recovery`` runs.

``build(index, catalog, as_of=...)`` returns a ``CoverageReport``, a typed, versioned, JSON-serialisable
document that states its own definitions (``definitions``):

- **verification**: an ``auto-recovery`` run of the failure mode (automation left on, no human); its
  result is its outcome (``recovered`` / ``not recovered``), its recovery time the ``recover`` timing
  (t0 -> steady state holds again), compared with the catalog's ``recoveryTarget``. It **passed** when
  it recovered within the target.
- **verified**: the latest verification up to ``as_of`` passed and is fewer than ``window_days`` whole
  days old (default 90).
- **human drill**: a ``no-automation`` run of the failure mode whose outcome is ``unaided`` or ``with hints``.
- **coverage**: the share of catalogued failure modes that are verified, plain and severity-weighted
  (critical 8, high 4, medium 2, low 1), shown apart from the share that only claims automation.
- **red flags**: ``neglected`` (neither a passing latest verification nor a human drill within 180
  days), ``no-recent-human`` (automation claimed, no human drill within 180 days), ``never-verified``
  (automation claimed, no verification run at all), ``stale`` (the latest verification is ``window_days``
  old or more), ``failing`` (the latest verification did not recover), ``over-target`` (it recovered,
  slower than the target or with no measured time).

"Within 180 days" means at most 180 whole days, the same edge as the retention report's red (> 180).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from orchestrator.adapters import archivequeries
from orchestrator.archive import indexing, windows
from orchestrator.definitions import catalog as catalog_

SCHEMA_VERSION = 1
DEFAULT_WINDOW_DAYS = windows.GREEN_BELOW_DAYS
NEGLECT_DAYS = windows.RED_ABOVE_DAYS
WEIGHTS: dict[str, int] = {"critical": 8, "high": 4, "medium": 2, "low": 1}
RECOVERED = "recovered"
FLAGS = ("neglected", "no-recent-human", "never-verified", "stale", "failing", "over-target")


class _Doc(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Definitions(_Doc):
    verification: str = (
        "an auto-recovery run of the failure mode; result = its outcome (recovered / not recovered), "
        "recovery time = its 'recover' timing (t0 -> steady state holds again) against the catalog's recoveryTarget"
    )
    passed: str = "the verification recovered and its recover timing is at most the recovery target"
    verified: str = "the latest verification up to as_of passed and is fewer than window_days whole days old"
    human_drill: str = "a no-automation run of the failure mode whose outcome is 'unaided' or 'with hints'"
    days: str = "whole days, rounded down, from the run's start (started_at) to as_of; runs after as_of are ignored"
    window_days: int
    neglect_days: int = NEGLECT_DAYS
    weights: dict[str, int] = WEIGHTS
    coverage: str = (
        "verified_share = verified failure modes / catalogued failure modes; weighted shares divide the sums of "
        "the severity weights instead; claimed_share is the same over failure modes whose catalog entry claims "
        "automation (automation.kind is not 'none'), shown apart"
    )
    red_flags: dict[str, str] = {
        "neglected": "neither a passing latest verification nor a human drill within neglect_days",
        "no-recent-human": "automation claimed, but no human drill within neglect_days",
        "never-verified": "automation claimed, but no verification run at all",
        "stale": "the latest verification is window_days whole days old or more",
        "failing": "the latest verification did not recover",
        "over-target": "the latest verification recovered, but slower than the target (or unmeasured)",
    }


class Verification(_Doc):
    run_id: str
    started_at: str | None
    days: int
    result: str
    recover_s: float | None
    censored: bool
    target_s: float
    met_target: bool
    passed: bool


class HumanDrill(_Doc):
    run_id: str
    started_at: str | None
    days: int
    outcome: str


class ModeCoverage(_Doc):
    key: str
    service: str
    severity: str
    weight: int
    automation_kind: str
    automation_name: str | None
    claimed: bool
    verifications: int
    last_verification: Verification | None
    verified: bool
    human_drills: int
    last_human_drill: HumanDrill | None
    red_flags: list[str]


class Summary(_Doc):
    failure_modes: int
    claimed: int
    verified: int
    verified_claimed: int
    claimed_share: float
    verified_share: float
    verified_of_claimed_share: float
    total_weight: int
    claimed_weight: int
    verified_weight: int
    claimed_weighted_share: float
    verified_weighted_share: float
    flags: dict[str, int]


class RedFlag(_Doc):
    failure_mode: str
    severity: str
    flag: str


class CoverageReport(_Doc):
    schema_version: int = SCHEMA_VERSION
    kind: Literal["auto-recovery-coverage"] = "auto-recovery-coverage"
    as_of: str
    definitions: Definitions
    summary: Summary
    failure_modes: list[ModeCoverage]
    red_flags: list[RedFlag]
    uncatalogued_failure_modes: list[str]

    def to_json(self) -> str:
        return self.model_dump_json(indent=2) + "\n"


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _latest(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The latest run per failure mode (rows come oldest first, so the last one seen wins)."""
    latest: dict[str, dict[str, Any]] = {}
    for row in rows:
        latest[row["failure_mode"]] = row
    return latest


def build(
    index: indexing.Index,
    catalog: catalog_.Catalog | None,
    *,
    as_of: datetime,
    window_days: int = DEFAULT_WINDOW_DAYS,
) -> CoverageReport:
    """The auto-recovery coverage report of the archive ``index`` against ``catalog`` (None: the index's)."""
    if window_days < 1:
        raise ValueError("window_days must be at least 1")
    read = windows.read_catalog(index, catalog)
    as_of_s = as_of.timestamp()
    keys = {m.key for m in read.modes}
    checks = [r for r in archivequeries.verification_runs(index, until_s=as_of_s) if r["failure_mode"] is not None]
    drills = [
        r
        for r in archivequeries.human_runs(index, until_s=as_of_s)
        if r["failure_mode"] is not None and r["outcome"] in windows.PRACTICE_OUTCOMES
    ]
    uncatalogued = sorted({r["failure_mode"] for r in (*checks, *drills)} - keys)
    check_counts: dict[str, int] = {}
    for r in checks:
        check_counts[r["failure_mode"]] = check_counts.get(r["failure_mode"], 0) + 1
    drill_counts: dict[str, int] = {}
    for r in drills:
        drill_counts[r["failure_mode"]] = drill_counts.get(r["failure_mode"], 0) + 1
    last_check, last_drill = _latest(checks), _latest(drills)

    rows: list[ModeCoverage] = []
    flags: list[RedFlag] = []
    for mode in read.modes:
        verification = None
        if (check := last_check.get(mode.key)) is not None:
            seconds = None if check["seconds"] is None or check["censored"] else float(check["seconds"])
            met = seconds is not None and seconds <= mode.recovery_target_s
            verification = Verification(
                run_id=check["run_id"],
                started_at=check["started_at"],
                days=windows.days_since(check["started_s"], as_of_s),
                result=check["outcome"] or "unknown",
                recover_s=seconds,
                censored=bool(check["censored"]),
                target_s=mode.recovery_target_s,
                met_target=met,
                passed=check["outcome"] == RECOVERED and met,
            )
        human = None
        if (drill := last_drill.get(mode.key)) is not None:
            human = HumanDrill(
                run_id=drill["run_id"],
                started_at=drill["started_at"],
                days=windows.days_since(drill["started_s"], as_of_s),
                outcome=drill["outcome"],
            )
        verified = verification is not None and verification.passed and verification.days < window_days
        recent_check = verification is not None and verification.passed and verification.days <= NEGLECT_DAYS
        recent_human = human is not None and human.days <= NEGLECT_DAYS
        mine: list[str] = []
        if not recent_check and not recent_human:
            mine.append("neglected")
        if mode.claimed and not recent_human:
            mine.append("no-recent-human")
        if mode.claimed and verification is None:
            mine.append("never-verified")
        if verification is not None:
            if verification.days >= window_days:
                mine.append("stale")
            if verification.result != RECOVERED:
                mine.append("failing")
            elif not verification.met_target:
                mine.append("over-target")
        flags.extend(RedFlag(failure_mode=mode.key, severity=mode.severity, flag=f) for f in mine)
        rows.append(
            ModeCoverage(
                key=mode.key,
                service=mode.service,
                severity=mode.severity,
                weight=WEIGHTS.get(mode.severity, 1),
                automation_kind=mode.automation_kind,
                automation_name=mode.automation_name,
                claimed=mode.claimed,
                verifications=check_counts.get(mode.key, 0),
                last_verification=verification,
                verified=verified,
                human_drills=drill_counts.get(mode.key, 0),
                last_human_drill=human,
                red_flags=mine,
            )
        )
    total_w = sum(r.weight for r in rows)
    claimed_w = sum(r.weight for r in rows if r.claimed)
    verified_w = sum(r.weight for r in rows if r.verified)
    n_claimed = sum(r.claimed for r in rows)
    n_verified = sum(r.verified for r in rows)
    n_verified_claimed = sum(r.verified and r.claimed for r in rows)
    summary = Summary(
        failure_modes=len(rows),
        claimed=n_claimed,
        verified=n_verified,
        verified_claimed=n_verified_claimed,
        claimed_share=_share(n_claimed, len(rows)),
        verified_share=_share(n_verified, len(rows)),
        verified_of_claimed_share=_share(n_verified_claimed, n_claimed),
        total_weight=total_w,
        claimed_weight=claimed_w,
        verified_weight=verified_w,
        claimed_weighted_share=_share(claimed_w, total_w),
        verified_weighted_share=_share(verified_w, total_w),
        flags={f: sum(1 for x in flags if x.flag == f) for f in FLAGS},
    )
    return CoverageReport(
        as_of=windows.iso(as_of),
        definitions=Definitions(window_days=window_days),
        summary=summary,
        failure_modes=rows,
        red_flags=flags,
        uncatalogued_failure_modes=uncatalogued,
    )
