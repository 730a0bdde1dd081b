"""Benchmark the cross-drill reports: skill retention and auto-recovery coverage over a large synthetic archive.

    .venv/bin/python scripts/bench_reports.py                 # 10,000 runs / 500 people / 200 failure modes
    .venv/bin/python scripts/bench_reports.py --runs 1000 --people 50 --failure-modes 20 --out /tmp/bench
    .venv/bin/python scripts/bench_reports.py --root /tmp/bench   # reuse a generated, indexed archive

Generates the archive (``archive.generating``), rebuilds its index with the catalog, then times each report
in a fresh child process, so each peak RSS is that report's own (the interpreter, imports, reading the
catalog, building the report and writing its JSON), not the generator's. Target: <= 2 s and <= 300 MB each.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from orchestrator.archive import coverage, generating, indexing, retention
from orchestrator.definitions import catalog

REPORTS = ("retention", "coverage")
AS_OF = datetime(2026, 1, 15, tzinfo=UTC)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(root: Path, which: str) -> int:
    """One report, in this (fresh) process: catalog, build, JSON; seconds for each and peak RSS."""
    began = time.perf_counter()
    loaded = catalog.load_catalog(root / "catalog")
    catalog_s = time.perf_counter() - began
    archive = root / "archive"
    index = indexing.open_index(archive, url=archive / indexing.INDEX_FILE, read_only=True)
    try:
        began = time.perf_counter()
        report = (retention if which == "retention" else coverage).build(index, loaded, as_of=AS_OF)
        build_s = time.perf_counter() - began
        began = time.perf_counter()
        text = report.to_json()
        json_s = time.perf_counter() - began
    finally:
        index.close()
    total = build_s + json_s
    verdict = "ok" if total <= 2.0 and _peak_mb() <= 300 else "OVER TARGET"
    print(
        f"{which:9} build {build_s:5.2f} s + json {json_s:5.2f} s = {total:5.2f} s "
        f"(catalog load {catalog_s:4.2f} s)   peak RSS {_peak_mb():4.0f} MB   "
        f"{len(text) / 1e6:5.1f} MB JSON   {verdict}"
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--people", type=int, default=500)
    parser.add_argument("--failure-modes", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", help="folder to generate into (default: a new temporary folder)")
    parser.add_argument("--root", help="an archive this script generated before: skip generating and indexing")
    parser.add_argument("--measure", choices=REPORTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        return measure(Path(args.root), args.measure)
    if args.root:
        root = Path(args.root)
    else:
        root = Path(args.out or tempfile.mkdtemp(prefix="drill-bench-reports-"))
        began = time.perf_counter()
        made = generating.generate(
            root,
            seed=args.seed,
            runs=args.runs,
            people=args.people,
            failure_modes=args.failure_modes,
            start=datetime(2025, 1, 1, tzinfo=UTC),
        )
        print(f"generate  {made.runs:,} runs: {time.perf_counter() - began:7.2f} s")
        loaded = catalog.load_catalog(made.catalog)
        index = indexing.open_index(made.archive, url=made.archive / indexing.INDEX_FILE)
        try:
            began = time.perf_counter()
            result = indexing.rebuild_index(made.archive, index=index, catalog=loaded)
            print(f"rebuild   {result.runs:,} runs: {time.perf_counter() - began:7.2f} s   {index.counts()}")
        finally:
            index.close()
    print(f"as of {AS_OF.date()}, each report in a fresh process:")
    status = 0
    for which in REPORTS:
        done = subprocess.run(
            [sys.executable, __file__, "--root", str(root), "--measure", which], check=False, text=True
        )
        status = status or done.returncode
    print(f"archive at {root / 'archive'}")
    return status


if __name__ == "__main__":
    sys.exit(main())
