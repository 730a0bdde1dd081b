"""Skill retention: on a fixed synthetic archive the report's numbers equal figures computed here straight from
the runs' report.json files and the catalog and roster YAML; tiny hand-built archives pin the edges."""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator import errors
from orchestrator.archive import generating, indexing, retention, storing
from orchestrator.definitions import catalog as catalog_

START = datetime(2025, 1, 1, tzinfo=UTC)
AS_OFS = (
    datetime(2025, 7, 1, tzinfo=UTC),
    datetime(2026, 1, 10, 12, tzinfo=UTC),
    datetime(2026, 9, 1, tzinfo=UTC),
)
DAY = 86_400


# -- the fixed synthetic archive ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Synthetic:
    root: Path
    index: indexing.Index
    catalog: catalog_.Catalog


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synthetic]:
    root = tmp_path_factory.mktemp("synthetic")
    made = generating.generate(root, seed=20260101, runs=150, people=12, failure_modes=10, start=START, days=365)
    assert made.runs == 150
    catalog = catalog_.load_catalog(made.catalog)
    index = indexing.open_index(made.archive)
    indexing.rebuild_index(made.archive, index=index, catalog=catalog)
    yield Synthetic(root, index, catalog)
    index.close()


def read_files(root: Path) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]], list[str]]:
    """The runs' report.json documents, the catalog's failure modes by key, and the roster, as plain data."""
    reports = [json.loads(p.read_text()) for p in sorted((root / "archive").glob("*/report.json"))]
    modes: dict[str, dict[str, Any]] = {}
    roster: list[str] = []
    for path in sorted((root / "catalog").glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        if doc["kind"] == "Roster":
            roster = [p["name"] for p in doc["spec"]["people"]]
        else:
            for m in doc["spec"]["failureModes"]:
                modes[f"{m['service']}/{m['id']}"] = m
    return reports, modes, roster


def started(report: dict[str, Any]) -> float:
    return datetime.fromisoformat(report["started_at"].replace("Z", "+00:00")).timestamp()


def expected_retention(root: Path, as_of: datetime, window: int) -> dict[str, Any]:
    """The retention figures, from the files alone (DESIGN.md's definitions, written out again here)."""
    reports, modes, roster = read_files(root)
    now = as_of.timestamp()
    runs = [r for r in reports if r["mode"] == "no-automation" and started(r) <= now]
    last: dict[tuple[str, str, str], int] = {}
    counts: dict[tuple[str, str, str], int] = defaultdict(int)
    scenario: dict[str, list[float]] = defaultdict(list)
    for r in runs:
        mitigate = next(t for t in r["timings"] if t["name"] == "mitigate")
        if mitigate["seconds"] is not None and r["failure_mode"] in modes:
            scenario[r["failure_mode"]].append(mitigate["seconds"])
    medians = {k: statistics.median(v) for k, v in scenario.items()}
    ratios: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in runs:
        age = int((now - started(r)) // DAY)
        mitigate = next(t for t in r["timings"] if t["name"] == "mitigate")
        for p in r["participants"]:
            if p["role"] != "responder" or p["name"] not in roster or r["failure_mode"] not in modes:
                continue
            if r["outcome"] in ("unaided", "with hints"):
                cell = (p["name"], r["failure_mode"], r["outcome"])
                last[cell] = min(last.get(cell, 10**9), age)
                counts[cell] += 1
            if mitigate["seconds"] is not None:
                when = datetime.fromtimestamp(started(r), UTC)
                quarter = f"{when.year}-Q{(when.month + 2) // 3}"
                ratios[(p["name"], quarter)].append(mitigate["seconds"] / medians[r["failure_mode"]])
    cells = {}
    current: dict[str, list[str]] = defaultdict(list)
    for person in roster:
        for key in modes:
            unaided = last.get((person, key, "unaided"))
            hinted = last.get((person, key, "with hints"))
            ages = [a for a in (unaided, hinted) if a is not None]
            age = min(ages) if ages else None
            colour = "never" if age is None else "green" if age < 90 else "amber" if age <= 180 else "red"
            cells[(person, key)] = (
                unaided,
                hinted,
                colour,
                counts[(person, key, "unaided")],
                counts[(person, key, "with hints")],
            )
            if age is not None and age < window:
                current[key].append(person)
    ready = {
        key: (len(current[key]), len(current[key]) >= 2 and len(current[key]) >= 0.8 * len(roster))
        for key, m in modes.items()
        if m["severity"] == "critical"
    }
    trend = {k: statistics.median(v) for k, v in ratios.items()}
    return {"cells": cells, "ready": ready, "trend": trend, "medians": medians}


@pytest.mark.parametrize("as_of", AS_OFS, ids=lambda d: d.date().isoformat())
def test_retention_numbers_equal_figures_computed_from_the_files(synthetic: Synthetic, as_of: datetime) -> None:
    report = retention.build(synthetic.index, synthetic.catalog, as_of=as_of)
    expected = expected_retention(synthetic.root, as_of, 90)
    got = {
        (c.person, c.failure_mode): (c.days_unaided, c.days_with_hints, c.status, c.unaided_runs, c.with_hints_runs)
        for c in report.cells()
    }
    assert len(list(report.cells())) == 12 * 10 == len(got)
    assert got == expected["cells"]
    for row in report.people:
        colours = [v[2] for (person, _), v in expected["cells"].items() if person == row.person]
        assert (row.green, row.amber, row.red, row.never) == tuple(
            colours.count(c) for c in ("green", "amber", "red", "never")
        )
    assert {r.failure_mode: (r.current, r.ready) for r in report.readiness} == expected["ready"]
    trend = {(t.person, t.quarter): t.ratio for t in report.trend}
    assert trend.keys() == expected["trend"].keys()
    for key, ratio in expected["trend"].items():
        assert trend[key] == pytest.approx(ratio, abs=1e-4), key
    medians = {m.key: m.median_mitigate_s for m in report.failure_modes if m.median_mitigate_s is not None}
    assert medians == pytest.approx(expected["medians"], abs=1e-3)
    if as_of == AS_OFS[1]:  # every colour is there, so the comparison means something
        assert {c.status for c in report.cells()} == {"green", "amber", "red", "never"}
        assert any(c.days_unaided is not None and c.days_with_hints is not None for c in report.cells())
    data = json.loads(report.to_json())
    assert data["schema_version"] == retention.SCHEMA_VERSION and data["kind"] == "skill-retention"
    assert data["definitions"]["trend_timing"] == "mitigate" and data["definitions"]["window_days"] == 90
    assert retention.RetentionReport.model_validate(data) == report


def test_the_index_catalog_gives_the_same_report_and_the_window_changes_readiness(synthetic: Synthetic) -> None:
    as_of = AS_OFS[1]
    from_catalog = retention.build(synthetic.index, synthetic.catalog, as_of=as_of)
    assert retention.build(synthetic.index, None, as_of=as_of) == from_catalog
    wide = retention.build(synthetic.index, synthetic.catalog, as_of=as_of, window_days=400)
    expected = expected_retention(synthetic.root, as_of, 400)
    assert {r.failure_mode: (r.current, r.ready) for r in wide.readiness} == expected["ready"]
    assert wide.definitions.window_days == 400
    assert sum(r.current for r in wide.readiness) > sum(r.current for r in from_catalog.readiness)


# -- tiny hand-built archives ---------------------------------------------------------------------------------

T0 = datetime(2026, 6, 1, tzinfo=UTC)


def write_catalog(folder: Path, modes: Sequence[tuple[str, str, str, str | None]], people: Sequence[str]) -> Path:
    """``modes``: (key, severity, automation kind, automation name) with a 5-minute target each."""
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for key, severity, kind, name in modes:
        service, ident = key.split("/")
        automation = {"kind": kind} if name is None else {"kind": kind, "name": name}
        entries.append(
            {
                "service": service,
                "id": ident,
                "severity": severity,
                "detection": "an alert",
                "automation": automation,
                "runbook": f"https://runbooks.example.com/{key}",
                "recoveryTarget": "5m",
            }
        )
    head = {"apiVersion": "drill.dev/v1alpha1", "metadata": {"name": "tiny"}}
    (folder / "modes.yaml").write_text(
        yaml.safe_dump({**head, "kind": "FailureModeCatalog", "spec": {"failureModes": entries}})
    )
    roster = [{"name": p, "team": "sre", "roles": ["responder"]} for p in people]
    (folder / "roster.yaml").write_text(yaml.safe_dump({**head, "kind": "Roster", "spec": {"people": roster}}))
    return folder


def add_run(
    archive: Path,
    run_id: str,
    *,
    mode: str,
    failure_mode: str,
    at: datetime,
    outcome: str,
    people: Sequence[tuple[str, str]] = (),
    seconds: float | None = None,
) -> None:
    """One archived run; ``seconds`` is its mitigate (no-automation) or recover (auto-recovery) timing."""
    timing = "recover" if mode == "auto-recovery" else "mitigate"
    stamp = at.isoformat().replace("+00:00", "Z")
    report = {
        "schema_version": 2,
        "run_id": run_id,
        "drill": run_id,
        "drill_path": f"drills/{run_id}.yaml",
        "mode": mode,
        "failure_mode": failure_mode,
        "target": "sandbox:/tmp/x",
        "state": "done",
        "outcome": outcome,
        "started_at": stamp,
        "ended_at": stamp,
        "generated_at": stamp,
        "participants": [{"name": n, "role": r} for n, r in people],
        "timings": [
            {
                "name": timing,
                "seconds": seconds,
                "censored": seconds is None,
                "lower_bound_s": None if seconds is not None else 1800.0,
                "expected_s": None,
                "met": None,
            }
        ],
        "hints_used": int(outcome == "with hints"),
        "responders": [],
        "policies": [],
        "timeline": [],
        "notes": [],
    }
    with storing.staging(archive, run_id) as staged:
        (staged / "report.json").write_text(json.dumps(report))
        (staged / "report.md").write_text("")
        (staged / "journal.jsonl").write_text("")
        storing.publish(staged, archive, run_id, archived_at=None, durable=False)


def tiny_index(root: Path) -> tuple[indexing.Index, catalog_.Catalog]:
    catalog = catalog_.load_catalog(root / "catalog")
    index = indexing.open_index(root / "archive")
    indexing.rebuild_index(root / "archive", index=index, catalog=catalog)
    return index, catalog


@pytest.fixture
def tiny(tmp_path: Path) -> Iterator[tuple[indexing.Index, catalog_.Catalog]]:
    """alice: unaided exactly 90 days ago, with hints 10 days ago; bob: unaided exactly 180 days and 181 days
    ago; carol: a timed-out run and a facilitator role (no practice); dave: never drilled; erin (not in the
    roster) responded; svc/unloved has no runs; svc/db-lost is critical."""
    write_catalog(
        tmp_path / "catalog",
        [("svc/db-lost", "critical", "none", None), ("svc/unloved", "low", "none", None)],
        ["alice", "bob", "carol", "dave"],
    )
    archive = tmp_path / "archive"
    key = "svc/db-lost"
    human = {"mode": "no-automation", "failure_mode": key}
    add_run(archive, "r-a90", **human, at=T0 - timedelta(days=90), outcome="unaided", people=[("alice", "responder")])
    add_run(
        archive,
        "r-a10",
        **human,
        at=T0 - timedelta(days=10),
        outcome="with hints",
        people=[("alice", "responder"), ("carol", "facilitator")],
    )
    add_run(archive, "r-b180", **human, at=T0 - timedelta(days=180), outcome="unaided", people=[("bob", "responder")])
    add_run(archive, "r-b181", **human, at=T0 - timedelta(days=181), outcome="unaided", people=[("bob", "responder")])
    add_run(archive, "r-c5", **human, at=T0 - timedelta(days=5), outcome="timed out", people=[("carol", "responder")])
    add_run(archive, "r-e3", **human, at=T0 - timedelta(days=3), outcome="unaided", people=[("erin", "responder")])
    add_run(archive, "r-late", **human, at=T0 + timedelta(days=1), outcome="unaided", people=[("dave", "responder")])
    index, catalog = tiny_index(tmp_path)
    yield index, catalog
    index.close()


def test_edges_exactly_90_and_180_days_hints_apart_and_people_who_never_drilled(
    tiny: tuple[indexing.Index, catalog_.Catalog],
) -> None:
    index, catalog = tiny
    report = retention.build(index, catalog, as_of=T0)
    cells = {(c.person, c.failure_mode): c for c in report.cells()}
    alice = cells[("alice", "svc/db-lost")]
    assert (alice.days_unaided, alice.days_with_hints, alice.days, alice.status) == (90, 10, 10, "green")
    assert (alice.unaided_runs, alice.with_hints_runs) == (1, 1)
    bob = cells[("bob", "svc/db-lost")]
    assert (bob.days_unaided, bob.days_with_hints, bob.status, bob.unaided_runs) == (180, None, "amber", 2)
    assert cells[("carol", "svc/db-lost")].status == "never"  # timed out and facilitating are not practice
    assert cells[("dave", "svc/db-lost")].status == "never"  # his run is after as_of
    assert all(cells[(p, "svc/unloved")].status == "never" for p in report.roster)
    assert report.roster == ["alice", "bob", "carol", "dave"] and len(list(report.cells())) == 8
    assert report.not_in_roster == ["erin"]
    assert [(p.person, p.never) for p in report.people] == [("alice", 1), ("bob", 1), ("carol", 2), ("dave", 2)]
    (ready,) = report.readiness
    assert (ready.failure_mode, ready.current, ready.current_unaided, ready.ready) == ("svc/db-lost", 1, 0, False)
    assert ready.current_people == ["alice"]
    # a day later alice's unaided practice turns 91 days old, bob's 181: red
    later = retention.build(index, catalog, as_of=T0 + timedelta(days=1))
    cells = {(c.person, c.failure_mode): c for c in later.cells()}
    assert cells[("bob", "svc/db-lost")].status == "red"
    assert cells[("alice", "svc/db-lost")].days_unaided == 91
    # 90 days exactly: amber, and not current (current = fewer than window_days days)
    earlier = retention.build(index, catalog, as_of=T0 - timedelta(days=10, seconds=1))
    cells = {(c.person, c.failure_mode): c for c in earlier.cells()}
    assert (cells[("alice", "svc/db-lost")].days, cells[("alice", "svc/db-lost")].status) == (79, "green")
    exact = retention.build(index, catalog, as_of=T0 - timedelta(days=90) + timedelta(days=90))
    assert exact == report


def test_readiness_needs_two_people_and_80_percent_of_the_roster(tmp_path: Path) -> None:
    write_catalog(tmp_path / "catalog", [("svc/db-lost", "critical", "none", None)], ["p1", "p2", "p3", "p4", "p5"])
    archive = tmp_path / "archive"
    for i, person in enumerate(["p1", "p2", "p3", "p4"]):
        add_run(
            archive,
            f"r-{i}",
            mode="no-automation",
            failure_mode="svc/db-lost",
            at=T0 - timedelta(days=89 if i else 90),
            outcome="unaided",
            people=[(person, "responder")],
            seconds=100.0 * (i + 1),
        )
    index, catalog = tiny_index(tmp_path)
    try:
        (ready,) = retention.build(index, catalog, as_of=T0).readiness
        assert (ready.current, ready.share, ready.ready) == (3, 0.6, False)  # p1 at exactly 90 days is not current
        (ready,) = retention.build(index, catalog, as_of=T0, window_days=91).readiness
        assert (ready.current, ready.share, ready.ready) == (4, 0.8, True)
        report = retention.build(index, catalog, as_of=T0)
        # trend: each run's mitigate over the scenario's median (250 s)
        assert {(t.person, t.ratio) for t in report.trend} == {("p1", 0.4), ("p2", 0.8), ("p3", 1.2), ("p4", 1.6)}
        assert report.definitions.trend_timing == "mitigate"
        assert report.failure_modes[0].median_mitigate_s == 250.0
    finally:
        index.close()


def test_drill_report_retention_prints_the_document_or_a_summary(
    synthetic: Synthetic, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.cli import crossreports

    monkeypatch.delenv("DRILL_INDEX_URL", raising=False)
    monkeypatch.chdir(synthetic.root)  # no ./drills/catalog here: without --catalog, the index's catalog
    args = argparse.Namespace(
        home=None,
        archive=str(synthetic.root / "archive"),
        catalog=str(synthetic.root / "catalog"),
        json=True,
        as_of="2026-01-10",
        window_days=120,
    )
    assert crossreports.retention(args) == 0
    printed = json.loads(capsys.readouterr().out)
    as_of = datetime(2026, 1, 11, tzinfo=UTC) - timedelta(microseconds=1)  # the whole of that day
    report = retention.build(synthetic.index, synthetic.catalog, as_of=as_of, window_days=120)
    assert printed == json.loads(report.to_json())
    args.json, args.catalog = False, None  # the index's catalog
    assert crossreports.retention(args) == 0
    out = capsys.readouterr().out
    assert "skill retention as of 2026-01-10T23:59:59.999999Z" in out and "readiness" in out
    assert all(person in out for person in report.roster)
    args.as_of = "last tuesday"
    with pytest.raises(errors.ReportError, match="--as-of"):
        crossreports.retention(args)
