"""Benchmark the static site over a large synthetic archive: one run's page, and the whole site.

    .venv/bin/python scripts/bench_site.py                    # 10,000 runs / 500 people / 200 failure modes
    .venv/bin/python scripts/bench_site.py --runs 1000 --people 50 --failure-modes 20 --out /tmp/bench
    .venv/bin/python scripts/bench_site.py --root /tmp/bench  # reuse a generated, indexed archive

Generates the archive (``archive.generating``) and rebuilds its index with the catalog, then, each in a fresh
child process so that each peak RSS is its own:

- **page**: one run's page, the run with the longest timeline: read ``report.json`` (checked against the
  manifest), render, write the page and its JSON atomically; the median of 50 (and of the render alone).
- **site**: ``build_site`` of the whole archive (every run page, index, retention, coverage) into a new folder.

Targets (issue 10): one page <= 200 ms; the whole site <= 60 s.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from orchestrator.archive import generating, indexing, site, storing
from orchestrator.definitions import catalog

AS_OF = datetime(2026, 1, 15, tzinfo=UTC)
PAGE_REPEATS = 50


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _longest_run(archive: Path) -> Path:
    folders = [f for f in storing.run_folders(archive) if storing.is_archived(f)]
    return max(folders[:2000], key=lambda f: ((f / "report.json").stat().st_size, f.name))


def measure_page(root: Path) -> int:
    archive = root / "archive"
    folder = _longest_run(archive)
    out = Path(tempfile.mkdtemp(prefix="drill-bench-page-"))
    whole, render = [], []
    for _ in range(PAGE_REPEATS):
        began = time.perf_counter()
        report, raw = site.read_run(folder)
        rendered = time.perf_counter()
        html = site.render_run(report)
        render.append(time.perf_counter() - rendered)
        site.write_atomic(out / f"{report.run_id}.json", raw)
        site.write_atomic(out / f"{report.run_id}.html", html)
        whole.append(time.perf_counter() - began)
    first = whole[0]
    median = statistics.median(whole)
    verdict = "ok" if median <= 0.2 else "OVER TARGET"
    print(
        f"page   {folder.name} ({len(report.timeline)} events): median {median * 1000:6.2f} ms over {PAGE_REPEATS} "
        f"(render alone {statistics.median(render) * 1000:5.2f} ms; first, compiling the templates, "
        f"{first * 1000:6.1f} ms)   {len(html) / 1024:5.1f} KiB   peak RSS {_peak_mb():4.0f} MB   {verdict}"
    )
    return 0


def measure_site(root: Path) -> int:
    archive = root / "archive"
    began = time.perf_counter()
    loaded = catalog.load_catalog(root / "catalog")
    catalog_s = time.perf_counter() - began
    out = Path(tempfile.mkdtemp(prefix="drill-bench-site-"))
    index = indexing.open_index(archive, url=archive / indexing.INDEX_FILE, read_only=True)
    try:
        began = time.perf_counter()
        summary = site.build_site(archive, out, catalog=loaded, as_of=AS_OF, index=index)
        build_s = time.perf_counter() - began
    finally:
        index.close()
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    sizes = {name: (out / name).stat().st_size / 1e6 for name in ("index.html", "retention.html", "coverage.html")}
    verdict = "ok" if build_s <= 60 else "OVER TARGET"
    print(
        f"site   {summary.runs:,} runs, {summary.files:,} files, {size / 1e6:6.1f} MB: {build_s:6.2f} s "
        f"(catalog load {catalog_s:4.2f} s)   peak RSS {_peak_mb():4.0f} MB   {verdict}"
    )
    print(
        "       " + ", ".join(f"{name} {mb:.1f} MB" for name, mb in sizes.items()) + f"; skipped {len(summary.skipped)}"
    )
    print(f"       site at {out / 'index.html'}")
    return 0 if not summary.skipped else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--people", type=int, default=500)
    parser.add_argument("--failure-modes", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", help="folder to generate into (default: a new temporary folder)")
    parser.add_argument("--root", help="an archive this script generated before: skip generating and indexing")
    parser.add_argument("--measure", choices=("page", "site"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        return (measure_page if args.measure == "page" else measure_site)(Path(args.root))
    if args.root:
        root = Path(args.root)
    else:
        root = Path(args.out or tempfile.mkdtemp(prefix="drill-bench-site-"))
        began = time.perf_counter()
        made = generating.generate(
            root,
            seed=args.seed,
            runs=args.runs,
            people=args.people,
            failure_modes=args.failure_modes,
            start=datetime(2025, 1, 1, tzinfo=UTC),
        )
        print(f"generate {made.runs:,} runs: {time.perf_counter() - began:7.2f} s")
        loaded = catalog.load_catalog(made.catalog)
        index = indexing.open_index(made.archive, url=made.archive / indexing.INDEX_FILE)
        try:
            began = time.perf_counter()
            result = indexing.rebuild_index(made.archive, index=index, catalog=loaded)
            print(f"rebuild  {result.runs:,} runs: {time.perf_counter() - began:7.2f} s")
        finally:
            index.close()
    print(f"as of {AS_OF.date()}, each measure in a fresh process:")
    status = 0
    for which in ("page", "site"):
        done = subprocess.run([sys.executable, __file__, "--root", str(root), "--measure", which], check=False)
        status = status or done.returncode
    print(f"archive at {root / 'archive'}")
    return status


if __name__ == "__main__":
    sys.exit(main())
