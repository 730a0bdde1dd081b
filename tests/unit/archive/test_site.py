"""The static site: a page per run with its figures, the cross-drill pages with their JSON's, no network, escaped."""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from orchestrator.archive import coverage, generating, indexing, retention, site, storing
from orchestrator.definitions import catalog as catalog_
from orchestrator.reporting import model, reports

AS_OF = datetime(2026, 1, 15, tzinfo=UTC)
HOSTILE = '<script>alert("x")</script> & <img src=x onerror=alert(1)> "quoted"'


def _seconds(value: float) -> str:
    """The page's way of writing a JSON figure, written out again here: at most 3 decimals, ' s'."""
    text = f"{value:.3f}"
    while text.endswith("0"):
        text = text[:-1]
    return text.removesuffix(".") + " s"


def _add_hostile_run(archive: Path) -> str:
    """A copy of one generated run with a note, a description and a drill name that try to be HTML."""
    source = next(f for f in storing.run_folders(archive) if f.name.endswith(tuple("0123456789abcdef")))
    report = model.load(source / "report.json")
    run_id = "zz-hostile-run-0001"
    note = model.NoteRow(at=report.started_at, actor="mallory <b>", text=HOSTILE)
    hostile = report.model_copy(
        update={"run_id": run_id, "notes": [note], "description": HOSTILE, "drill": 'evil"><script>x()</script>'}
    )
    with storing.staging(archive, run_id) as staged:
        (staged / "report.json").write_text(hostile.to_json(), encoding="utf-8")
        (staged / "report.md").write_text(reports.render_markdown(hostile), encoding="utf-8")
        (staged / "journal.jsonl").write_text("", encoding="utf-8")
        storing.publish(staged, archive, run_id, archived_at=None, durable=False)
    return run_id


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[generating.Generated, Path, str]:
    root = tmp_path_factory.mktemp("site")
    made = generating.generate(
        root, seed=11, runs=80, people=8, failure_modes=8, start=datetime(2025, 1, 1, tzinfo=UTC), days=365
    )
    hostile = _add_hostile_run(made.archive)
    catalog = catalog_.load_catalog(made.catalog)
    index = indexing.open_index(made.archive, url=made.archive / indexing.INDEX_FILE)
    try:
        indexing.rebuild_index(made.archive, index=index, catalog=catalog)
        summary = site.build_site(made.archive, root / "site", catalog=catalog, as_of=AS_OF, index=index)
    finally:
        index.close()
    assert summary.skipped == []
    assert summary.runs == made.runs + 1
    assert summary.cross_reports == ["retention", "coverage"]
    return made, root / "site", hostile


def _html_files(out: Path) -> list[Path]:
    return sorted(out.rglob("*.html"))


def test_every_run_has_a_page_with_its_figures_and_its_json(built: tuple[generating.Generated, Path, str]) -> None:
    made, out, _ = built
    folders = [f for f in storing.run_folders(made.archive) if storing.is_archived(f)]
    assert len(folders) == made.runs + 1
    censored_seen = 0
    for folder in folders:
        page = out / "runs" / f"{folder.name}.html"
        html = page.read_text(encoding="utf-8")
        assert (out / "runs" / f"{folder.name}.json").read_bytes() == (folder / "report.json").read_bytes()
        data = json.loads((folder / "report.json").read_text(encoding="utf-8"))
        assert f'<code id="run-id">{data["run_id"]}</code>' in html
        assert f'<span class="outcome" id="outcome">{data["outcome"]}</span>' in html
        for timing in data["timings"]:
            row = re.search(rf'<tr data-timing="{timing["name"]}">(.*?)</tr>', html, re.S)
            assert row is not None, (folder.name, timing["name"])
            if timing["seconds"] is not None:
                assert _seconds(timing["seconds"]) in row.group(1)
            elif timing["censored"]:
                assert f"&gt; {_seconds(timing['lower_bound_s'])}" in row.group(1)
                censored_seen += 1
            if timing["expected_s"] is not None:
                assert _seconds(timing["expected_s"]) in row.group(1)
        for responder in data["responders"]:
            assert f"<td>{responder['name']}</td>" in html
        for policy in data["policies"]:
            assert f"<td>{policy['name']}</td>" in html
        assert html.count("<svg ") >= 1
        assert html.count("<tr><td>") >= len(data["timeline"])
    assert censored_seen > 0, "the synthetic archive has timed-out runs; their timings must show as '> N s'"


def test_the_index_lists_every_run_newest_first(built: tuple[generating.Generated, Path, str]) -> None:
    made, out, _ = built
    html = (out / "index.html").read_text(encoding="utf-8")
    listed = re.findall(r'<a href="runs/([^"]+)\.html">', html)
    reports_ = [json.loads((f / "report.json").read_text()) for f in storing.run_folders(made.archive)]
    expected = [
        r["run_id"]
        for r in sorted(
            reports_, key=lambda r: (datetime.fromisoformat(r["started_at"]).timestamp(), r["run_id"]), reverse=True
        )
    ]
    assert listed == expected
    document = json.loads((out / "index.json").read_text())
    assert [r["run_id"] for r in document["runs"]] == expected
    assert 'href="retention.html"' in html
    assert 'href="coverage.html"' in html


def test_nothing_is_loaded_from_anywhere(built: tuple[generating.Generated, Path, str]) -> None:
    _, out, _ = built
    runbook = re.compile(r'<a class="runbook" href="https://runbooks\.example\.com/[^"\s]+" rel="noreferrer">')
    for path in _html_files(out):
        html = path.read_text(encoding="utf-8")
        assert "default-src 'none'" in html
        assert not re.search(r"<link\b|@import|url\(|<iframe|<object|<embed", html, re.I), path
        without_runbooks = runbook.sub("", html)
        assert not re.search(r"https?:|//[a-z0-9]", without_runbooks, re.I), (
            path,
            re.findall(r".{40}https?:.{40}", html),
        )
        for attr in re.findall(r'\b(?:src|href|action|poster|srcset)\s*=\s*"([^"]*)"', without_runbooks, re.I):
            assert not attr.startswith(("//", "data:", "javascript:")), (path, attr)
    coverage_html = (out / "coverage.html").read_text(encoding="utf-8")
    assert len(runbook.findall(coverage_html)) == len(json.loads((out / "coverage.json").read_text())["failure_modes"])


def test_a_note_that_is_html_is_shown_as_text(built: tuple[generating.Generated, Path, str]) -> None:
    _, out, hostile = built
    html = (out / "runs" / f"{hostile}.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;img src=x onerror=alert(1)&gt;" in html
    assert html.count("<script") == 1  # the page's own error recorder, in the head; nothing from the report
    assert "<img" not in html
    assert "mallory &lt;b&gt;" in html
    index_html = (out / "index.html").read_text(encoding="utf-8")
    assert "evil&#34;&gt;&lt;script&gt;x()&lt;/script&gt;" in html
    assert index_html.count("<script") == 2  # the recorder and the filter


def test_the_cross_drill_pages_hold_their_json_figures(built: tuple[generating.Generated, Path, str]) -> None:
    made, out, _ = built
    cov = json.loads((out / "coverage.json").read_text())
    html = (out / "coverage.html").read_text(encoding="utf-8")
    s = cov["summary"]
    for key in ("claimed_share", "verified_share", "claimed_weighted_share", "verified_weighted_share"):
        assert f'id="{key.replace("_", "-")}">{s[key] * 100:.1f}%</td>' in html
    for name, count in s["flags"].items():
        assert f'<span class="flag">{name}: {count}</span>' in html
    assert html.count('<tr id="mode-') == len(cov["failure_modes"])

    ret = json.loads((out / "retention.json").read_text())
    html = (out / "retention.html").read_text(encoding="utf-8")
    cells = re.findall(r'<td class="(green|amber|red|never)">([0-9]*\*?)</td>', html)
    assert len(cells) == len(ret["people"]) * len(ret["failure_modes"])
    expected = [
        (status, "" if days is None else f"{days}{'*' if unaided is None else ''}")
        for row in ret["people"]
        for status, days, unaided in zip(row["status"], row["days"], row["days_unaided"], strict=True)
    ]
    assert cells == expected
    for point in ret["trend"]:
        assert f"{point['quarter']} x{point['ratio']:.2f}" in html
    assert html.count('<svg class="chart trend"') == len({p["person"] for p in ret["trend"]})

    catalog = catalog_.load_catalog(made.catalog)
    index = indexing.open_index(made.archive, url=made.archive / indexing.INDEX_FILE, read_only=True)
    try:
        assert (out / "coverage.json").read_text() == coverage.build(index, catalog, as_of=AS_OF).to_json()
        assert (out / "retention.json").read_text() == retention.build(index, catalog, as_of=AS_OF).to_json()
    finally:
        index.close()


def test_files_are_whole_and_a_rebuild_is_the_same(
    built: tuple[generating.Generated, Path, str], tmp_path: Path
) -> None:
    made, out, _ = built
    assert not [p for p in out.rglob(".*")], "no temporary file left behind"
    catalog = catalog_.load_catalog(made.catalog)
    index = indexing.open_index(made.archive, url=made.archive / indexing.INDEX_FILE, read_only=True)
    try:
        site.build_site(made.archive, tmp_path / "again", catalog=catalog, as_of=AS_OF, index=index)
    finally:
        index.close()
    first = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    second = {p.relative_to(tmp_path / "again"): p.read_bytes() for p in (tmp_path / "again").rglob("*") if p.is_file()}
    assert first == second


def test_a_damaged_run_is_left_out_and_no_catalog_means_runs_only(
    built: tuple[generating.Generated, Path, str], tmp_path: Path
) -> None:
    made, _, _ = built
    archive = tmp_path / "archive"
    shutil.copytree(made.archive, archive, ignore=shutil.ignore_patterns("index.db*"))
    damaged = storing.run_folders(archive)[0]
    path = damaged / "report.json"
    path.write_text(path.read_text().replace('"hints_used": 0', '"hints_used": 9'), encoding="utf-8")
    (archive / "half-written").mkdir()
    index = indexing.open_index(archive, url=tmp_path / "empty.db")
    try:
        summary = site.build_site(archive, tmp_path / "out", catalog=None, as_of=AS_OF, index=index)
    finally:
        index.close()
    assert summary.runs == made.runs
    assert not (tmp_path / "out" / "runs" / f"{damaged.name}.html").exists()
    assert any("does not match its manifest checksum" in line for line in summary.skipped)
    assert any("half-written: not archived" in line for line in summary.skipped)
    assert summary.cross_reports == []
    assert any("holds no catalog" in line for line in summary.skipped)
    html = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    assert "retention.html</a> (" not in html
    assert "does not match its manifest checksum" in html


def test_the_timeline_chart_shows_a_censored_timing_as_longer_than_its_bound() -> None:
    from orchestrator.archive import svg

    chart = svg.timeline_chart(
        [svg.Bar("resolve", None, True, 1800.0, 900.0, False), svg.Bar("acknowledge", 61.5, False, None, 120.0, True)],
        [svg.Mark(0.0, "fault-active", "drill"), svg.Mark(61.5, "acknowledged", "<b>ann</b>")],
    )
    assert "&gt; 1800 s" in chart
    assert "61.5 s" in chart
    assert "&lt;b&gt;ann&lt;/b&gt;" in chart
    assert "<b>" not in chart


def test_the_command_builds_the_site_and_says_where(
    built: tuple[generating.Generated, Path, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import argparse

    from orchestrator.cli import site as site_cli

    made, out, _ = built
    monkeypatch.delenv("DRILL_INDEX_URL", raising=False)
    args = argparse.Namespace(
        home=str(tmp_path / "home"),
        archive=str(made.archive),
        out=str(tmp_path / "cli-site"),
        catalog=str(made.catalog),
        as_of="2026-01-15T00:00:00Z",
        window_days=None,
    )
    assert site_cli.build(args) == 0
    printed = capsys.readouterr().out
    assert f"site of {made.runs + 1} runs and retention, coverage" in printed
    assert str((tmp_path / "cli-site" / "index.html").resolve()) in printed
    assert (tmp_path / "cli-site" / "coverage.json").read_text() == (out / "coverage.json").read_text()
