"""Benchmark: `drill --help` against `chaos --help`, median of several alternating runs.

Target: drill / chaos <= 1.2. Both run from the same virtualenv in the same session, so the
ratio holds on a noisy shared machine where absolute times do not.

    .venv/bin/python scripts/bench_help.py [--runs 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_RATIO = 1.2


def _time(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    bindir = Path(sys.executable).parent
    drill = [str(bindir / "drill"), "--help"]
    chaos = [str(bindir / "chaos"), "--help"]
    for cmd in (drill, chaos):  # warm the file cache once
        _time(cmd)
    drill_s: list[float] = []
    chaos_s: list[float] = []
    for _ in range(args.runs):
        drill_s.append(_time(drill))
        chaos_s.append(_time(chaos))
    d, c = statistics.median(drill_s), statistics.median(chaos_s)
    ratio = d / c
    print(f"{'command':<16}{'median':>10}{'min':>10}{'max':>10}   ({args.runs} runs each, alternating)")
    print(f"{'drill --help':<16}{d * 1000:>8.1f}ms{min(drill_s) * 1000:>8.1f}ms{max(drill_s) * 1000:>8.1f}ms")
    print(f"{'chaos --help':<16}{c * 1000:>8.1f}ms{min(chaos_s) * 1000:>8.1f}ms{max(chaos_s) * 1000:>8.1f}ms")
    verdict = "ok" if ratio <= TARGET_RATIO else "OVER TARGET"
    print(f"ratio drill/chaos = {ratio:.2f} (target <= {TARGET_RATIO}): {verdict}")
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
