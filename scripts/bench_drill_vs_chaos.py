"""Benchmark: `drill run` of a chaos-mode drill against `chaos run` of the same experiment.

The experiment is the most trivial there is: one probe running `true` (tests/data/ctk/trivial.json).
`chaos run` runs it as is; `drill run` runs a `mode: chaos` drill wrapping it, on the built-in sandbox
(started once, outside the timings), with a fresh DRILL_HOME and DRILL_ARCHIVE every time (so every
run creates its journal and its archive index, as a first run does). Both are whole commands in
subprocesses, alternating, N times each, after one warm-up run each that also leaves drill's byte code
cached as pip leaves chaos's (PYTHONDONTWRITEBYTECODE is dropped for them); `chaos` gets
`--no-version-check` (no network call: chaos at its fastest). Prints the medians and the difference;
target: drill <= chaos + 0.2 s (exit 1 above it).

    .venv/bin/python scripts/bench_drill_vs_chaos.py [--runs 15]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from orchestrator.sandbox import control

REPO = Path(__file__).resolve().parents[1]
EXPERIMENT = REPO / "tests" / "data" / "ctk" / "trivial.json"
BIN = Path(sys.executable).parent
TARGET_S = 0.2


def _timed(command: list[str], *, cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one run of ``command``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="drill-bench-") as tmp:
        work = Path(tmp)
        sandbox_home = work / "sandbox"
        control.start_sandbox(sandbox_home)
        try:
            return _bench(work, sandbox_home, args.runs)
        finally:
            control.stop_sandbox(sandbox_home)


def _bench(work: Path, sandbox_home: Path, runs: int) -> int:
    settings = work / "settings.yaml"
    settings.write_text("{}\n", encoding="utf-8")
    drill_file = work / "trivial.yaml"
    drill_file.write_text(
        json.dumps(
            {
                "apiVersion": "drill.dev/v1alpha1",
                "kind": "Drill",
                "metadata": {"name": "trivial"},
                "spec": {
                    "mode": "chaos",
                    "target": {"kind": "sandbox", "home": str(sandbox_home)},
                    "experiment": {"path": str(EXPERIMENT)},
                },
            }
        ),
        encoding="utf-8",
    )
    chaos = [str(BIN / "chaos"), "--no-version-check", "--settings", str(settings), "run"]
    chaos += ["--journal-path", str(work / "chaos-journal.json"), str(EXPERIMENT)]
    drill = [str(BIN / "drill"), "run", str(drill_file), "--plain"]
    chaos_s: list[tuple[float, float]] = []
    drill_s: list[tuple[float, float]] = []
    base = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

    def fresh(i: int) -> dict[str, str]:
        home, archive = work / f"home-{i}", work / f"archive-{i}"
        return dict(base, DRILL_HOME=str(home), DRILL_ARCHIVE=str(archive))

    _timed(chaos, cwd=work, env=base)  # warm the file cache (and drill's byte code) once, both
    _timed(drill, cwd=work, env=fresh(-1))
    for i in range(runs):
        chaos_s.append(_timed(chaos, cwd=work, env=base))
        drill_s.append(_timed(drill, cwd=work, env=fresh(i)))
        shutil.rmtree(work / f"home-{i}", ignore_errors=True)
        shutil.rmtree(work / f"archive-{i}", ignore_errors=True)
    c, d = (statistics.median(w for w, _ in t) for t in (chaos_s, drill_s))
    print(f"{'command':<12}{'median':>9}{'min':>9}{'max':>9}{'cpu':>9}   ({runs} runs each, alternating; cpu: median)")
    for name, times in (("chaos run", chaos_s), ("drill run", drill_s)):
        walls = [w for w, _ in times]
        cpu = statistics.median(u for _, u in times)
        print(f"{name:<12}{statistics.median(walls):>8.3f}s{min(walls):>8.3f}s{max(walls):>8.3f}s{cpu:>8.3f}s")
    verdict = "ok" if d - c <= TARGET_S else "OVER TARGET"
    print(f"difference drill - chaos = {d - c:+.3f} s (target <= +{TARGET_S} s): {verdict}")
    return 0 if d - c <= TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
