"""The archive index: runs, participants (per-person timings, role, hints), timings, files, the catalog.

Where it lives: ``$DRILL_INDEX_URL`` when set (a PostgreSQL URL a team shares, possibly the journal's
own database: the tables are prefixed ``archive_``), else ``<archive>/index.db``, a SQLite file next to
the runs it indexes, so an archive folder copied elsewhere carries its index and can always rebuild it.

The index is derived from the files only (``report.json`` checked against ``manifest.json``): adding one
run (``index_run``) and rebuilding everything (``rebuild_index``) produce the same rows, which the tests
compare table by table. Each is one transaction (``adapters.archivedb``). The cross-drill reports read it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator import errors
from orchestrator.adapters import archivedb
from orchestrator.archive import storing
from orchestrator.reporting import model

if TYPE_CHECKING:  # only in annotations: `drill run` indexes its run without loading the catalog's models
    from orchestrator.definitions import catalog as catalog_

INDEX_FILE = "index.db"
Row = dict[str, Any]
Index = archivedb.IndexDb
_PERSON_TIMINGS = ("acknowledge", "diagnose", "mitigated", "resolve")


def index_url(archive_root: Path) -> str | Path:
    """Where the index lives: ``$DRILL_INDEX_URL``; else the journal's own database when the team
    shares one (``$DRILL_JOURNAL_URL`` on a server: the ``archive_*`` tables sit beside the journal's);
    else ``<archive>/index.db``, so a copied archive carries its index."""
    explicit = os.environ.get("DRILL_INDEX_URL")
    if explicit:
        return explicit
    journal = os.environ.get("DRILL_JOURNAL_URL", "")
    if "://" in journal and not journal.startswith("sqlite"):
        return journal
    return archive_root / INDEX_FILE


def open_index(archive_root: Path, *, url: str | Path | None = None, read_only: bool = False) -> Index:
    return archivedb.IndexDb(url if url is not None else index_url(archive_root), read_only=read_only)


@dataclass(frozen=True)
class RunRows:
    """Everything the index holds about one run."""

    run: Row
    participants: list[Row]
    timings: list[Row]
    files: list[Row]


@dataclass
class Rebuilt:
    runs: int = 0
    skipped: list[str] = field(default_factory=list)
    """Folders not indexed, one line each: no manifest, a damaged manifest or report."""


def _epoch(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def rows_for(report: model.RunReport, manifest: storing.Manifest) -> RunRows:
    started, ended = _epoch(report.started_at), _epoch(report.ended_at)
    run_id = report.run_id
    run: Row = {
        "run_id": run_id,
        "drill": report.drill,
        "drill_path": report.drill_path,
        "mode": report.mode,
        "failure_mode": report.failure_mode,
        "target": report.target,
        "state": report.state,
        "outcome": report.outcome,
        "abort_reason": report.abort_reason,
        "started_at": report.started_at,
        "started_s": started,
        "ended_at": report.ended_at,
        "duration_s": None if started is None or ended is None else round(ended - started, 3),
        "hints_used": report.hints_used,
        "participants": len(report.participants),
        "policies": len(report.policies),
        "policies_restored": sum(1 for p in report.policies if p.restore_verified),
        "manifest_sha256": manifest.sha256,
    }
    responders = {r.name: r.model_dump() for r in report.responders}
    people = []
    seen: set[str] = set()
    for participant in report.participants:
        if participant.name in seen:
            continue
        seen.add(participant.name)
        mine = responders.get(participant.name, {})
        row: Row = {"run_id": run_id, "name": participant.name, "role": participant.role}
        row["hints"] = int(mine.get("hints") or 0)
        for timing in _PERSON_TIMINGS:
            row[f"{timing}_s"] = _float(mine.get(f"{timing}_s"))
        people.append(row)
    timings = [
        {
            "run_id": run_id,
            "name": t.name,
            "seconds": t.seconds,
            "censored": int(t.censored),
            "lower_bound_s": t.lower_bound_s,
            "expected_s": t.expected_s,
            "met": None if t.met is None else int(t.met),
        }
        for t in {t.name: t for t in report.timings}.values()
    ]
    files = [
        {"run_id": run_id, "name": name, "sha256": entry.sha256, "bytes": entry.bytes}
        for name, entry in sorted(manifest.files.items())
    ]
    return RunRows(run=run, participants=people, timings=timings, files=files)


def read_run(folder: Path) -> RunRows:
    """The index rows of one archived run folder, from its files alone; ReportError if it is not sound."""
    manifest = storing.read_manifest(folder)
    report = storing.load_report(folder, manifest)
    if report.run_id != manifest.run_id:
        raise errors.ReportError(f"{folder / 'report.json'}: is the report of {report.run_id!r}")
    return rows_for(report, manifest)


def index_run(index: Index, folder: Path) -> None:
    """Add (or replace) one archived run in the index, in one transaction."""
    rows = read_run(folder)
    index.put_run(rows.run, participant_rows=rows.participants, timing_rows=rows.timings, file_rows=rows.files)


def catalog_rows(catalog: catalog_.Catalog) -> tuple[list[Row], list[Row]]:
    modes = [
        {
            "key": key,
            "service": mode.service,
            "id": mode.id,
            "severity": mode.severity.value,
            "detection": mode.detection,
            "automation_kind": mode.automation.kind.value,
            "automation_name": mode.automation.name,
            "verified_by_drill": mode.verified_by.drill if mode.verified_by else None,
            "verified_by_experiment": mode.verified_by.experiment if mode.verified_by else None,
            "runbook": mode.runbook,
            "recovery_target_s": mode.recovery_target,
            "source": Path(catalog.sources[key]).name,
        }
        for key, mode in sorted(catalog.failure_modes.items())
    ]
    people = [
        {"name": p.name, "team": p.team, "roles": ",".join(sorted({r.value for r in p.roles}))}
        for p in sorted(catalog.people, key=lambda p: p.name)
    ]
    return modes, people


def index_catalog(index: Index, catalog: catalog_.Catalog) -> None:
    """Replace the index's catalog and roster with ``catalog`` (already loaded whole, so valid)."""
    modes, people = catalog_rows(catalog)
    index.put_catalog(failure_mode_rows=modes, people_rows=people)


def rebuild_index(
    archive_root: Path, *, index: Index | None = None, catalog: catalog_.Catalog | None = None
) -> Rebuilt:
    """Rebuild the index from the archive's files alone, replacing it in one transaction.

    With ``catalog`` the catalog and roster are replaced too; without, they are kept as they are.
    Folders that are not sound archived runs are skipped and listed; they never stop the rebuild.
    """
    result = Rebuilt()
    tables: dict[str, list[Row]] = {
        archivedb.RUNS: [],
        archivedb.PARTICIPANTS: [],
        archivedb.TIMINGS: [],
        archivedb.FILES: [],
    }
    for folder in storing.run_folders(archive_root):
        if not storing.is_archived(folder):
            result.skipped.append(f"{folder.name}: not archived (no {storing.MANIFEST})")
            continue
        try:
            rows = read_run(folder)
        except errors.ReportError as exc:
            result.skipped.append(str(exc))
            continue
        tables[archivedb.RUNS].append(rows.run)
        tables[archivedb.PARTICIPANTS].extend(rows.participants)
        tables[archivedb.TIMINGS].extend(rows.timings)
        tables[archivedb.FILES].extend(rows.files)
        result.runs += 1
    if catalog is not None:
        modes, people = catalog_rows(catalog)
        tables[archivedb.FAILURE_MODES] = modes
        tables[archivedb.PEOPLE] = people
    owned = index is None
    db = open_index(archive_root) if index is None else index
    try:
        db.replace_all(tables)
    finally:
        if owned:
            db.close()
    return result
