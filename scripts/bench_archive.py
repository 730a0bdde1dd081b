"""Benchmark the archive: generate a synthetic archive, then time the index rebuild and ``drill report list``.

    .venv/bin/python scripts/bench_archive.py                 # 10,000 runs / 500 people / 200 failure modes
    .venv/bin/python scripts/bench_archive.py --runs 1000 --out /tmp/bench

Prints seconds and the process's peak RSS after each step (peak RSS only grows: each figure is the peak so far).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from orchestrator.archive import generating, indexing
from orchestrator.cli import reporting
from orchestrator.definitions import catalog


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--people", type=int, default=500)
    parser.add_argument("--failure-modes", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", help="folder to generate into (default: a new temporary folder)")
    args = parser.parse_args()
    root = Path(args.out or tempfile.mkdtemp(prefix="drill-bench-"))
    start = datetime(2025, 1, 1, tzinfo=UTC)

    began = time.perf_counter()
    made = generating.generate(
        root, seed=args.seed, runs=args.runs, people=args.people, failure_modes=args.failure_modes, start=start
    )
    print(f"generate  {made.runs:,} runs: {time.perf_counter() - began:7.2f} s   peak RSS {_peak_mb():6.0f} MB")

    began = time.perf_counter()
    loaded = catalog.load_catalog(made.catalog)
    print(
        f"catalog   {len(loaded.failure_modes)} modes: "
        f"{time.perf_counter() - began:7.2f} s   peak RSS {_peak_mb():6.0f} MB"
    )

    index = indexing.open_index(made.archive, url=made.archive / indexing.INDEX_FILE)
    began = time.perf_counter()
    result = indexing.rebuild_index(made.archive, index=index, catalog=loaded)
    print(f"rebuild   {result.runs:,} runs: {time.perf_counter() - began:7.2f} s   peak RSS {_peak_mb():6.0f} MB")
    print(f"          {index.counts()}")
    index.close()

    for limit in (20, None):
        namespace = argparse.Namespace(home=None, archive=str(made.archive), limit=limit, json=False)
        began = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()) as out:
            reporting.list_runs(namespace)
        lines = out.getvalue().count("\n")
        print(f"list      {lines:,} lines: {time.perf_counter() - began:7.2f} s   peak RSS {_peak_mb():6.0f} MB")
    print(f"archive at {made.archive}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
