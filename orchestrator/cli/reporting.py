"""``drill report list|show|rebuild|verify|demo``: the archive of finished runs and its index.

The index is ``$DRILL_INDEX_URL`` or ``<archive>/index.db`` (``archive.indexing``). ``list`` and ``show``
only read; ``rebuild`` replaces the index from the archive's files (and the catalog folder, when there
is one), after the catalog loaded whole: a malformed catalog is refused and the index is left as it was.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from orchestrator import durations, errors
from orchestrator.archive import indexing, storing
from orchestrator.cli import context
from orchestrator.definitions import catalog as catalog_

DEFAULT_CATALOG = Path("drills") / "catalog"


def _archive(args: argparse.Namespace) -> Path:
    return context.paths(args).archive


def _seconds(value: object) -> str:
    return durations.format_duration(value) if isinstance(value, int | float) else "-"


def list_runs(args: argparse.Namespace) -> int:
    """``drill report list``: archived runs, newest first, from the index."""
    index = indexing.open_index(_archive(args), read_only=True)
    try:
        rows = index.list_runs(
            limit=getattr(args, "limit", 20),
            failure_mode=getattr(args, "failure_mode", None),
            person=getattr(args, "person", None),
        )
    finally:
        index.close()
    if getattr(args, "json", False):
        print(json.dumps(rows, indent=2, sort_keys=True))
        return 0
    for row in rows:
        print(
            f"{row['started_at'] or '-':24}  {row['run_id']:56}  {row['mode']:13}  {row['outcome'] or row['state']:14}"
            f"  {row['failure_mode'] or '-'}  hints {row['hints_used']}"
        )
    if not rows:
        print("no archived runs (drill report rebuild indexes the archive's files)")
    return 0


def show(args: argparse.Namespace) -> int:
    """``drill report show RUN``: one archived run from the index (a unique prefix is enough)."""
    index = indexing.open_index(_archive(args), read_only=True)
    try:
        matches = index.run_ids(args.run)
        if not matches:
            raise errors.ReportError(f"no archived run {args.run!r}; `drill report list` shows them")
        if len(matches) > 1 and args.run not in matches:
            raise errors.ReportError(f"{args.run!r} names more than one run ({', '.join(matches)}, ...); give more")
        run_id = args.run if args.run in matches else matches[0]
        row = index.rows("archive_runs", run_id=run_id)[0]
        people = index.rows("archive_participants", run_id=run_id)
        timings = index.rows("archive_timings", run_id=run_id)
        files = index.rows("archive_files", run_id=run_id)
    finally:
        index.close()
    if getattr(args, "json", False):
        print(json.dumps({"run": row, "participants": people, "timings": timings, "files": files}, indent=2))
        return 0
    print(f"{row['run_id']}: {row['drill']} ({row['mode']}), {row['outcome'] or row['state']}")
    print(
        f"  failure mode {row['failure_mode'] or '-'}; started {row['started_at']}; "
        f"lasted {_seconds(row['duration_s'])}"
    )
    if row["abort_reason"]:
        print(f"  aborted: {row['abort_reason']}")
    print(f"  hints used {row['hints_used']}; policies restored {row['policies_restored']}/{row['policies']}")
    print("timings:")
    for t in timings:
        measured = _seconds(t["seconds"]) if not t["censored"] else f"> {_seconds(t['lower_bound_s'])}"
        met = {None: "", 1: "  met", 0: "  MISSED"}[t["met"]]
        print(f"  {t['name']:12} {measured:>10}  expected {_seconds(t['expected_s'])}{met}")
    print("participants:")
    for p in people:
        own = ", ".join(
            f"{k.removesuffix('_s')} {_seconds(p[k])}"
            for k in ("acknowledge_s", "diagnose_s", "mitigated_s", "resolve_s")
            if p[k] is not None
        )
        print(f"  {p['name']} ({p['role']}): hints {p['hints']}{'; ' + own if own else ''}")
    print(f"files: {_archive(args) / run_id}/ ({', '.join(f['name'] for f in files)}, manifest.json)")
    return 0


def rebuild(args: argparse.Namespace) -> int:
    """``drill report rebuild``: the index from the archive's files alone (and the catalog, if any)."""
    archive = _archive(args)
    folder = getattr(args, "catalog", None)
    catalog_dir = Path(folder) if folder else (DEFAULT_CATALOG if DEFAULT_CATALOG.is_dir() else None)
    catalog = catalog_.load_catalog(catalog_dir) if catalog_dir is not None else None  # refused before any write
    swept = storing.sweep(archive)
    result = indexing.rebuild_index(archive, catalog=catalog)
    for line in result.skipped:
        print(f"  skipped {line}", file=sys.stderr)
    where = indexing.index_url(archive)
    extra = f", catalog {catalog_dir} ({len(catalog.failure_modes)} failure modes)" if catalog else ""
    print(f"indexed {result.runs} runs from {archive} into {where}{extra}")
    if swept:
        print(f"removed {len(swept)} leftovers of interrupted archiving")
    return 0


def verify(args: argparse.Namespace) -> int:
    """``drill report verify``: every archived file against its manifest's sha256; exit 1 on any mismatch."""
    archive = _archive(args)
    result = storing.verify(archive)
    for line in result.problems:
        print(f"drill: {line}", file=sys.stderr)
    for name in result.unarchived:
        print(f"  not archived (no manifest): {name}")
    print(f"{len(result.ok)} runs verified, {len(result.problems)} problems in {archive}")
    return 1 if result.problems else 0


def demo(args: argparse.Namespace) -> int:
    """``drill report demo``: a synthetic year of drills in a folder, indexed; prints where it is."""
    from orchestrator.archive import generating

    root = Path(getattr(args, "out", None) or "reports/demo")
    if root.exists() and any(root.iterdir()):
        raise errors.ReportError(f"{root} is not empty; give an empty or new folder with --out")
    # The year up to today, so the cross-drill reports of the demo look like a team's real year.
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = today - timedelta(days=365)
    made = generating.generate(
        root,
        seed=getattr(args, "seed", 7),
        runs=getattr(args, "runs", 400),
        people=getattr(args, "people", 24),
        failure_modes=getattr(args, "failure_modes", 20),
        start=start,
        days=365,
    )
    catalog = catalog_.load_catalog(made.catalog)
    index = indexing.open_index(made.archive, url=made.archive / indexing.INDEX_FILE)
    try:
        indexing.rebuild_index(made.archive, index=index, catalog=catalog)
        from orchestrator.archive import site

        built = site.build_site(made.archive, root / "site", catalog=catalog, index=index)
    finally:
        index.close()
    print(f"synthetic archive of {made.runs} runs ({', '.join(f'{n} {m}' for m, n in sorted(made.by_mode.items()))})")
    print(f"  archive: {made.archive}")
    print(f"  index:   {made.archive / indexing.INDEX_FILE}")
    print(f"  catalog: {made.catalog}")
    print(f"  site:    {built.out_dir / 'index.html'} (open it in a browser; it needs no network)")
    print(f"browse it: drill --archive {made.archive} report list")
    print(f"           drill --archive {made.archive} report retention --catalog {made.catalog}")
    print(f"           drill --archive {made.archive} report coverage --catalog {made.catalog}")
    return 0
