"""The archive as a self-contained static site: open ``index.html`` from disk, no network needed.

``build_site(archive_root, out_dir, catalog=..., as_of=...)`` writes::

    <out>/index.html, index.json            every archived run, newest first (filterable), links to all pages
    <out>/runs/<run-id>.html, <run-id>.json one page per run (its report, timeline chart) and its report.json
    <out>/retention.html, retention.json    skill retention: heat map person x failure mode, trend per quarter
    <out>/coverage.html, coverage.json      auto-recovery coverage: claimed vs verified, weighted; red flags

Runs come from the archive's files (each ``report.json`` checked against its manifest; a damaged run is
skipped and listed, never rendered); the cross-drill reports from the index (``archive.retention``,
``archive.coverage``), so their JSON here is the same document ``drill report retention|coverage --json``
prints. The JSON beside each page holds the numbers the page shows, for other tools.

Self-contained: CSS inline (with a print stylesheet), charts inline SVG (``archive.svg``), one small inline
script (the index's filter, and a recorder that writes any script error into the page), and a
Content-Security-Policy that lets a page load nothing at all (``default-src 'none'``). The only URLs are
the catalog's runbooks, as plain links a reader may follow.

Everything is escaped: Jinja2 autoescaping for HTML, and every string passed once more through
``redaction.clean`` (the reports are already cleaned; a site copied around must not leak what a newer
redaction rule would hide). Templates are compiled once per process; each file is written to a hidden
temporary file and renamed into place, so a reader never sees half a page.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from orchestrator import durations, errors, redaction
from orchestrator.archive import coverage as coverage_
from orchestrator.archive import indexing, storing, svg, windows
from orchestrator.archive import retention as retention_
from orchestrator.definitions import catalog as catalog_
from orchestrator.reporting import model

RUNS_DIR = "runs"


@dataclass
class SiteSummary:
    """What ``build_site`` wrote."""

    out_dir: Path
    runs: int = 0
    files: int = 0
    cross_reports: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """Runs not rendered (damaged or not archived) and cross-drill reports left out, one line each."""


def _finalize(value: object) -> object:
    """Every plain string printed by a template goes through the project's one redaction, once more."""
    if type(value) is str:
        return redaction.clean(value)
    return "-" if value is None else value


def _seconds(value: float | None) -> str:
    return "-" if value is None else svg.seconds_text(value)


def _pct(value: float) -> str:
    return f"{value * 100:.1f}%"


@functools.cache
def environment() -> jinja2.Environment:
    """The site's templates, loaded and compiled once per process."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("orchestrator.archive", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        finalize=_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["secs"] = _seconds
    env.filters["duration"] = durations.format_duration
    env.filters["pct"] = _pct
    env.filters["tojson_pretty"] = lambda v: json.dumps(v, sort_keys=True)
    return env


def _template(name: str) -> jinja2.Template:
    return environment().get_template(name)


def write_atomic(path: Path, data: str | bytes) -> None:
    """``path`` whole or not at all: a hidden temporary file in the same folder, renamed into place.

    No fsync: the site is derived data, rebuilt at will; the rename alone keeps readers from half a file.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _epoch(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def timeline_svg(report: model.RunReport) -> Markup:
    """The run's timeline chart: timings against expectations and every event, in seconds from t0."""
    at = [(row, _epoch(row.at)) for row in report.timeline]
    t0 = next((s for row, s in at if row.event == "fault-active" and s is not None), None)
    if t0 is None:
        t0 = _epoch(report.started_at) or next((s for _, s in at if s is not None), 0.0)
    bars = [svg.Bar(t.name, t.seconds, t.censored, t.lower_bound_s, t.expected_s, t.met) for t in report.timings]
    marks = [svg.Mark(s - t0, row.event, row.actor) for row, s in at if s is not None]
    return svg.timeline_chart(bars, marks)


def _responder_columns(report: model.RunReport) -> list[dict[str, Any]]:
    rows = []
    for r in report.responders:
        extra = r.model_extra or {}
        rows.append(
            {
                "name": r.name,
                "hints": r.hints,
                **{k: extra.get(f"{k}_s") for k in ("acknowledge", "diagnose", "mitigated", "resolve")},
            }
        )
    return rows


def render_run(report: model.RunReport) -> str:
    """One run's page (``runs/<run-id>.html``)."""
    return _template("run.html.j2").render(
        r=report,
        chart=timeline_svg(report),
        responders=_responder_columns(report),
        title=f"{report.drill}: {report.run_id}",
        root="../",
        json_name=f"{report.run_id}.json",
    )


def read_run(folder: Path) -> tuple[model.RunReport, bytes]:
    """The run's report and its bytes, checked against the manifest (one read of the file)."""
    manifest = storing.read_manifest(folder)
    entry = manifest.files.get("report.json")
    path = folder / "report.json"
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise errors.ReportError(f"{path}: {exc}") from None
    if entry is None or storing.FileEntry(hashlib.sha256(raw).hexdigest(), len(raw)) != entry:
        raise errors.ReportError(f"{path}: does not match its manifest checksum")
    try:
        data = json.loads(raw)
        if not isinstance(data, dict) or data.get("schema_version") not in model.READABLE_VERSIONS:
            raise ValueError(f"schema version {data.get('schema_version') if isinstance(data, dict) else None!r}")
        report = model.RunReport.model_validate({**data, "schema_version": model.SCHEMA_VERSION})
    except ValueError as exc:
        raise errors.ReportError(f"{path}: not a readable report: {str(exc).splitlines()[0]}") from None
    if report.run_id != folder.name:
        raise errors.ReportError(f"{path}: is the report of {report.run_id!r}")
    return report, raw


def _index_row(report: model.RunReport) -> dict[str, Any]:
    return {
        "run_id": report.run_id,
        "drill": report.drill,
        "mode": report.mode,
        "failure_mode": report.failure_mode,
        "outcome": report.outcome or report.state,
        "started_at": report.started_at,
        "hints_used": report.hints_used,
        "participants": [p.name for p in report.participants],
        "timings": {t.name: {"seconds": t.seconds, "censored": t.censored, "met": t.met} for t in report.timings},
        "page": f"{RUNS_DIR}/{report.run_id}.html",
        "json": f"{RUNS_DIR}/{report.run_id}.json",
    }


def _runbooks(index: indexing.Index | None, catalog: catalog_.Catalog | None) -> dict[str, str]:
    if catalog is not None:
        return {key: str(mode.runbook) for key, mode in catalog.failure_modes.items()}
    if index is None:
        return {}
    return {str(r["key"]): str(r["runbook"]) for r in index.rows("archive_failure_modes") if r.get("runbook")}


def _safe_link(url: str) -> str | None:
    """A runbook URL fit for an ``<a href>``: http(s) only (no ``javascript:``), else shown as text."""
    return url if url.startswith(("https://", "http://")) and not any(c.isspace() for c in url) else None


def render_retention(report: retention_.RetentionReport) -> str:
    quarters = sorted({t.quarter for t in report.trend})
    trends: dict[str, list[tuple[str, float]]] = {}
    for t in report.trend:
        trends.setdefault(t.person, []).append((t.quarter, t.ratio))
    charts = [(person, svg.trend_chart(points, quarters), points) for person, points in trends.items()]
    return _template("retention.html.j2").render(
        r=report, charts=charts, quarters=quarters, title="Skill retention", root=""
    )


def render_coverage(report: coverage_.CoverageReport, runbooks: dict[str, str], run_pages: set[str]) -> str:
    s = report.summary
    chart = svg.share_bars(
        [
            ("claimed", s.claimed_share, "claimed"),
            ("verified", s.verified_share, "verified"),
            ("claimed (severity-weighted)", s.claimed_weighted_share, "claimed"),
            ("verified (severity-weighted)", s.verified_weighted_share, "verified"),
        ]
    )
    links = {key: (url, _safe_link(url)) for key, url in runbooks.items()}
    return _template("coverage.html.j2").render(
        r=report, chart=chart, runbooks=links, run_pages=run_pages, title="Auto-recovery coverage", root=""
    )


def render_index(rows: list[dict[str, Any]], *, as_of: str, cross: list[str], skipped: list[str]) -> str:
    modes = sorted({r["mode"] for r in rows})
    outcomes = sorted({str(r["outcome"]) for r in rows})
    return _template("index.html.j2").render(
        rows=rows,
        modes=modes,
        outcomes=outcomes,
        cross=cross,
        skipped=skipped,
        as_of=as_of,
        title="Drill archive",
        root="",
    )


def _sorted_newest_first(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: (_epoch(r["started_at"]) or 0.0, r["run_id"]), reverse=True)


def build_site(
    archive_root: Path,
    out_dir: Path,
    *,
    catalog: catalog_.Catalog | None,
    as_of: datetime | None = None,
    index: indexing.Index | None = None,
    window_days: int = windows.GREEN_BELOW_DAYS,
) -> SiteSummary:
    """Write the static site of ``archive_root`` into ``out_dir`` (created; files there are replaced).

    ``catalog`` None: the catalog the index was rebuilt with; with neither, the cross-drill reports are left
    out (said on the index page and in ``skipped``). ``index`` None: the archive's own (read only).
    """
    moment = (as_of or datetime.now(UTC)).astimezone(UTC)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs_dir = out_dir / RUNS_DIR
    runs_dir.mkdir(exist_ok=True)
    summary = SiteSummary(out_dir=out_dir)
    rows: list[dict[str, Any]] = []
    for folder in storing.run_folders(archive_root):
        if not storing.is_archived(folder):
            summary.skipped.append(f"{folder.name}: not archived (no {storing.MANIFEST})")
            continue
        try:
            report, raw = read_run(folder)
        except errors.ReportError as exc:
            summary.skipped.append(str(exc))
            continue
        write_atomic(runs_dir / f"{report.run_id}.json", raw)
        write_atomic(runs_dir / f"{report.run_id}.html", render_run(report))
        rows.append(_index_row(report))
        summary.runs += 1
        summary.files += 2
    run_pages = {r["run_id"] for r in rows}

    owned = index is None
    db = indexing.open_index(archive_root, read_only=True) if index is None else index
    try:
        try:
            retention = retention_.build(db, catalog, as_of=moment, window_days=window_days)
            coverage = coverage_.build(db, catalog, as_of=moment, window_days=window_days)
        except errors.ReportError as exc:
            summary.skipped.append(f"cross-drill reports: {exc}")
        else:
            write_atomic(out_dir / "retention.json", retention.to_json())
            write_atomic(out_dir / "retention.html", render_retention(retention))
            write_atomic(out_dir / "coverage.json", coverage.to_json())
            write_atomic(out_dir / "coverage.html", render_coverage(coverage, _runbooks(db, catalog), run_pages))
            summary.cross_reports = ["retention", "coverage"]
            summary.files += 4
    finally:
        if owned:
            db.close()

    ordered = _sorted_newest_first(rows)
    as_of_text = windows.iso(moment)
    document = {"schema_version": 1, "kind": "drill-archive-index", "as_of": as_of_text, "runs": ordered}
    write_atomic(out_dir / "index.json", json.dumps(document, indent=1) + "\n")
    write_atomic(
        out_dir / "index.html",
        render_index(ordered, as_of=as_of_text, cross=summary.cross_reports, skipped=summary.skipped),
    )
    summary.files += 2
    return summary
