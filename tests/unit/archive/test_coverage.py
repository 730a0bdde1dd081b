"""Auto-recovery coverage: on a fixed synthetic archive the report's numbers equal figures computed here straight
from the runs' report.json files and the catalog YAML; tiny hand-built archives pin each red flag and edge."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from orchestrator import errors
from orchestrator.archive import coverage, indexing
from orchestrator.definitions import catalog as catalog_
from tests.unit.archive.test_retention import (
    AS_OFS,
    DAY,
    T0,
    Synthetic,
    add_run,
    read_files,
    started,
    synthetic,
    tiny_index,
    write_catalog,
)

__all__ = ["synthetic"]

WEIGHT = {"critical": 8, "high": 4, "medium": 2, "low": 1}


def seconds(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600}
    return float(text[:-1]) * units[text[-1]]


def expected_coverage(root: Path, as_of: datetime) -> dict[str, Any]:
    """The coverage figures, from the files alone (the definitions written out again here)."""
    reports, modes, _ = read_files(root)
    now = as_of.timestamp()
    seen = sorted((r for r in reports if started(r) <= now), key=lambda r: (started(r), r["run_id"]))
    rows = {}
    flags: dict[str, int] = dict.fromkeys(coverage.FLAGS, 0)
    for key, m in modes.items():
        checks = [r for r in seen if r["mode"] == "auto-recovery" and r["failure_mode"] == key]
        drills = [
            r
            for r in seen
            if r["mode"] == "no-automation" and r["failure_mode"] == key and r["outcome"] in ("unaided", "with hints")
        ]
        claimed = m["automation"]["kind"] != "none"
        last = checks[-1] if checks else None
        check_age = passed = None
        if last is not None:
            check_age = int((now - started(last)) // DAY)
            recover = next(t for t in last["timings"] if t["name"] == "recover")
            passed = last["outcome"] == "recovered" and recover["seconds"] <= seconds(m["recoveryTarget"])
        drill_age = int((now - started(drills[-1])) // DAY) if drills else None
        verified = bool(passed) and check_age is not None and check_age < 90
        recent_human = drill_age is not None and drill_age <= 180
        mine = []
        if not (passed and check_age is not None and check_age <= 180) and not recent_human:
            mine.append("neglected")
        if claimed and not recent_human:
            mine.append("no-recent-human")
        if claimed and last is None:
            mine.append("never-verified")
        if last is not None:
            if check_age is not None and check_age >= 90:
                mine.append("stale")
            if last["outcome"] != "recovered":
                mine.append("failing")
            elif not passed:
                mine.append("over-target")
        for flag in mine:
            flags[flag] += 1
        rows[key] = (claimed, len(checks), check_age, passed, verified, len(drills), drill_age, mine)
    weight = {k: WEIGHT[m["severity"]] for k, m in modes.items()}
    total = sum(weight.values())
    return {
        "rows": rows,
        "claimed_share": sum(r[0] for r in rows.values()) / len(rows),
        "verified_share": sum(r[4] for r in rows.values()) / len(rows),
        "claimed_weighted": sum(weight[k] for k, r in rows.items() if r[0]) / total,
        "verified_weighted": sum(weight[k] for k, r in rows.items() if r[4]) / total,
        "flags": flags,
    }


@pytest.mark.parametrize("as_of", AS_OFS, ids=lambda d: d.date().isoformat())
def test_coverage_numbers_equal_figures_computed_from_the_files(synthetic: Synthetic, as_of: datetime) -> None:
    report = coverage.build(synthetic.index, synthetic.catalog, as_of=as_of)
    expected = expected_coverage(synthetic.root, as_of)
    got = {
        m.key: (
            m.claimed,
            m.verifications,
            None if m.last_verification is None else m.last_verification.days,
            None if m.last_verification is None else m.last_verification.passed,
            m.verified,
            m.human_drills,
            None if m.last_human_drill is None else m.last_human_drill.days,
            m.red_flags,
        )
        for m in report.failure_modes
    }
    assert got == expected["rows"]
    s = report.summary
    assert s.failure_modes == 10
    assert s.claimed_share == pytest.approx(expected["claimed_share"], abs=1e-4)
    assert s.verified_share == pytest.approx(expected["verified_share"], abs=1e-4)
    assert s.claimed_weighted_share == pytest.approx(expected["claimed_weighted"], abs=1e-4)
    assert s.verified_weighted_share == pytest.approx(expected["verified_weighted"], abs=1e-4)
    assert s.flags == expected["flags"]
    assert len(report.red_flags) == sum(expected["flags"].values())
    assert json.loads(report.to_json())["definitions"]["weights"] == WEIGHT


def test_the_synthetic_year_shows_claimed_apart_from_verified_and_flags(synthetic: Synthetic) -> None:
    mid = coverage.build(synthetic.index, synthetic.catalog, as_of=AS_OFS[1])
    assert 0 < mid.summary.verified < mid.summary.claimed < mid.summary.failure_modes
    late = coverage.build(synthetic.index, None, as_of=AS_OFS[2])  # eight months after the last run
    assert late.summary.verified == 0
    assert late.summary.flags["stale"] == late.summary.claimed
    assert late.summary.flags["neglected"] == 10


@pytest.fixture
def tiny(tmp_path: Path) -> Iterator[tuple[indexing.Index, catalog_.Catalog]]:
    """One failure mode per case, all with a 5-minute (300 s) target."""
    write_catalog(
        tmp_path / "catalog",
        [
            ("svc/fresh", "critical", "operator", "op"),  # passed 10 days ago, human 180 days ago
            ("svc/stale", "high", "operator", "op"),  # passed exactly 90 days ago
            ("svc/failing", "medium", "failover", "fo"),  # last one did not recover (an earlier one did)
            ("svc/slow", "low", "script", "sc"),  # recovered in 400 s > 300 s
            ("svc/never", "critical", "autoscaler", "hpa"),  # claimed, no verification, no human drill
            ("svc/manual", "high", "none", None),  # no automation, a human drill 181 days ago
            ("svc/empty", "low", "none", None),  # no runs at all
        ],
        ["alice", "bob"],
    )
    archive = tmp_path / "archive"
    auto = {"mode": "auto-recovery", "people": [("bob", "observer")]}
    human = {"mode": "no-automation", "people": [("alice", "responder")]}
    add_run(archive, "fresh-a", failure_mode="svc/fresh", at=T0 - timedelta(days=10), outcome="recovered",
            seconds=300.0, **auto)  # fmt: skip
    add_run(archive, "fresh-h", failure_mode="svc/fresh", at=T0 - timedelta(days=180), outcome="with hints",
            seconds=500.0, **human)  # fmt: skip
    add_run(archive, "stale-a", failure_mode="svc/stale", at=T0 - timedelta(days=90), outcome="recovered",
            seconds=60.0, **auto)  # fmt: skip
    add_run(archive, "failing-1", failure_mode="svc/failing", at=T0 - timedelta(days=30), outcome="recovered",
            seconds=60.0, **auto)  # fmt: skip
    add_run(archive, "failing-2", failure_mode="svc/failing", at=T0 - timedelta(days=2), outcome="not recovered",
            **auto)  # fmt: skip
    add_run(archive, "slow-a", failure_mode="svc/slow", at=T0 - timedelta(days=1), outcome="recovered",
            seconds=400.0, **auto)  # fmt: skip
    add_run(archive, "manual-h", failure_mode="svc/manual", at=T0 - timedelta(days=181), outcome="unaided",
            seconds=200.0, **human)  # fmt: skip
    add_run(archive, "manual-t", failure_mode="svc/manual", at=T0 - timedelta(days=1), outcome="timed out",
            **human)  # fmt: skip
    add_run(archive, "other-a", failure_mode="other/thing", at=T0 - timedelta(days=1), outcome="recovered",
            seconds=1.0, **auto)  # fmt: skip
    index, catalog = tiny_index(tmp_path)
    yield index, catalog
    index.close()


def test_each_red_flag_and_the_90_and_180_day_edges(tiny: tuple[indexing.Index, catalog_.Catalog]) -> None:
    index, catalog = tiny
    report = coverage.build(index, catalog, as_of=T0)
    rows = {m.key: m for m in report.failure_modes}
    assert {k: m.red_flags for k, m in rows.items()} == {
        "svc/empty": ["neglected"],
        "svc/failing": ["neglected", "no-recent-human", "failing"],
        "svc/fresh": [],
        "svc/manual": ["neglected"],  # the timed-out drill is no human drill; 181 days > 180
        "svc/never": ["neglected", "no-recent-human", "never-verified"],
        "svc/slow": ["neglected", "no-recent-human", "over-target"],
        "svc/stale": ["no-recent-human", "stale"],
    }
    fresh = rows["svc/fresh"].last_verification
    assert fresh is not None and (fresh.days, fresh.recover_s, fresh.met_target, fresh.passed) == (
        10,
        300.0,
        True,
        True,
    )
    failing = rows["svc/failing"]
    assert failing.verifications == 2 and failing.last_verification is not None
    assert (failing.last_verification.result, failing.last_verification.passed, failing.verified) == (
        "not recovered",
        False,
        False,
    )
    assert rows["svc/stale"].last_verification is not None and rows["svc/stale"].last_verification.days == 90
    assert not rows["svc/stale"].verified  # exactly 90 days: no longer in the last 90 days
    human = rows["svc/fresh"].last_human_drill
    assert human is not None and (human.days, human.outcome) == (180, "with hints")
    assert rows["svc/empty"].last_verification is None and rows["svc/empty"].last_human_drill is None
    s = report.summary
    assert (s.failure_modes, s.claimed, s.verified, s.verified_claimed) == (7, 5, 1, 1)
    # weights: critical 8 (fresh, never), high 4 (stale, manual), medium 2 (failing), low 1 (slow, empty) = 28
    assert (s.total_weight, s.claimed_weight, s.verified_weight) == (28, 23, 8)
    assert s.verified_weighted_share == round(8 / 28, 4) and s.claimed_weighted_share == round(23 / 28, 4)
    assert s.verified_share == round(1 / 7, 4) and s.verified_of_claimed_share == 0.2
    assert report.uncatalogued_failure_modes == ["other/thing"]
    # a day later the human drill of svc/fresh is 181 days old; the day before, svc/stale was verified
    later = {m.key: m for m in coverage.build(index, catalog, as_of=T0 + timedelta(days=1)).failure_modes}
    assert later["svc/fresh"].red_flags == ["no-recent-human"]
    earlier = {m.key: m for m in coverage.build(index, catalog, as_of=T0 - timedelta(seconds=1)).failure_modes}
    assert earlier["svc/stale"].verified and "stale" not in earlier["svc/stale"].red_flags
    assert earlier["svc/manual"].red_flags == []  # 180 days: still within
    before = {m.key: m for m in coverage.build(index, catalog, as_of=T0 - timedelta(days=3)).failure_modes}
    assert before["svc/failing"].red_flags == ["no-recent-human"]  # the failing run is later; the first passed
    assert before["svc/failing"].verified


def test_the_report_states_its_definitions_and_round_trips(tiny: tuple[indexing.Index, catalog_.Catalog]) -> None:
    index, catalog = tiny
    report = coverage.build(index, catalog, as_of=T0, window_days=120)
    data = json.loads(report.to_json())
    assert data["schema_version"] == coverage.SCHEMA_VERSION and data["kind"] == "auto-recovery-coverage"
    assert data["definitions"]["window_days"] == 120 and data["definitions"]["neglect_days"] == 180
    assert set(data["definitions"]["red_flags"]) == set(coverage.FLAGS)
    assert coverage.CoverageReport.model_validate(data) == report
    assert {m.key for m in report.failure_modes if m.verified} == {"svc/fresh", "svc/stale"}
    assert data["as_of"] == T0.isoformat().replace("+00:00", "Z")
    assert int(data["summary"]["verified"]) == 2 and DAY == 86_400


def test_drill_report_coverage_prints_the_document_or_a_summary(
    synthetic: Synthetic, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.cli import crossreports

    monkeypatch.delenv("DRILL_INDEX_URL", raising=False)
    monkeypatch.chdir(synthetic.root)  # no ./drills/catalog here: without --catalog, the index's catalog
    args = argparse.Namespace(
        home=None,
        archive=str(synthetic.root / "archive"),
        catalog=None,
        json=True,
        as_of="2026-01-10T12:00:00Z",
        window_days=None,
    )
    assert crossreports.coverage(args) == 0
    printed = json.loads(capsys.readouterr().out)
    report = coverage.build(synthetic.index, synthetic.catalog, as_of=AS_OFS[1])
    assert printed == json.loads(report.to_json())
    args.json = False
    assert crossreports.coverage(args) == 0
    out = capsys.readouterr().out
    assert f"verified {report.summary.verified}/10" in out
    assert all(m.key in out for m in report.failure_modes)
    args.window_days = 0
    with pytest.raises(errors.ReportError, match="--window-days"):
        crossreports.coverage(args)


def test_both_reports_read_the_same_on_sqlite_and_postgresql(tmp_path: Path, index_url: str) -> None:
    """The queries are the index's: the same archive indexed in either database gives the same documents."""
    from orchestrator.archive import retention

    write_catalog(tmp_path / "catalog", [("svc/a", "critical", "operator", "op")], ["alice", "bob"])
    archive = tmp_path / "archive"
    add_run(archive, "h-1", mode="no-automation", failure_mode="svc/a", at=T0 - timedelta(days=20), outcome="unaided",
            people=[("alice", "responder"), ("bob", "responder")], seconds=120.0)  # fmt: skip
    add_run(archive, "a-1", mode="auto-recovery", failure_mode="svc/a", at=T0 - timedelta(days=5), outcome="recovered",
            people=[("bob", "observer")], seconds=200.0)  # fmt: skip
    catalog = catalog_.load_catalog(tmp_path / "catalog")
    index = indexing.open_index(archive, url=index_url)
    try:
        indexing.rebuild_index(archive, index=index, catalog=catalog)
        cover = coverage.build(index, None, as_of=T0)
        skills = retention.build(index, None, as_of=T0)
    finally:
        index.close()
    assert cover.summary.verified == 1 and cover.failure_modes[0].red_flags == []
    (ready,) = skills.readiness
    assert (ready.current, ready.ready) == (2, True)
    assert [(t.person, t.ratio) for t in skills.trend] == [("alice", 1.0), ("bob", 1.0)]
