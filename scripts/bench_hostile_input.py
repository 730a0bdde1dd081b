"""Benchmark: `drill validate` of each hostile input against a valid drill, wall time and peak memory.

Each run is measured in a small process whose only child is `drill validate`, so its
``getrusage(RUSAGE_CHILDREN).ru_maxrss`` is that validation's peak RSS. Median of several runs; the
ratios against the valid drill hold on a noisy shared machine where absolute times do not. Acceptance:
every hostile input exits 2 in under 2 s and under 200 MB.

    .venv/bin/python scripts/bench_hostile_input.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.unit.definitions import hostile  # noqa: E402 (the repository root is on the path only now)

MEASURE = """
import json, resource, subprocess, sys, time
start = time.monotonic()
proc = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "validate", sys.argv[1]],
                      capture_output=True, text=True, timeout=60)
wall = time.monotonic() - start
print(json.dumps({"code": proc.returncode, "wall_s": wall,
                  "rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def _measure(drill: Path, runs: int) -> tuple[int, float, float]:
    results = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", MEASURE, str(drill)], capture_output=True, text=True, cwd=REPO, check=True
        )
        results.append(json.loads(out.stdout))
    codes = {r["code"] for r in results}
    return (
        codes.pop() if len(codes) == 1 else -1,
        statistics.median(r["wall_s"] for r in results),
        statistics.median(r["rss_mb"] for r in results),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    cases = {"valid drill": hostile.valid, **hostile.HOSTILE, **hostile.EXTRA}
    base_s = base_mb = 0.0
    failed = False
    print(f"{'input':32} {'exit':>4} {'wall':>7} {'x valid':>8} {'peak RSS':>9} {'x valid':>8}")
    for name, build in cases.items():
        with tempfile.TemporaryDirectory() as folder:
            drill, _ = build(Path(folder))
            code, wall_s, rss_mb = _measure(drill, args.runs)
        if name == "valid drill":
            base_s, base_mb = wall_s, rss_mb
        else:
            failed |= code != 2 or wall_s >= 2.0 or rss_mb >= 200
        ratios = f"{wall_s / base_s:>7.2f}x {rss_mb:>6.0f} MB {rss_mb / base_mb:>7.2f}x"
        print(f"{name:32} {code:>4} {wall_s:>6.2f}s {ratios}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
