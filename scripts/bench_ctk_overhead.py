"""Overhead of running an experiment through drill's chaoslib adapter over ``chaos run``.

Both run the same trivial one-probe experiment (tests/data/ctk/trivial.json) in a fresh process, alternating,
N times; prints each median wall time and the difference. Usage: python scripts/bench_ctk_overhead.py [N]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXPERIMENT = REPO / "tests" / "data" / "ctk" / "trivial.json"
CHAOS = Path(sys.executable).with_name("chaos")

DRILL = """
import sys
from pathlib import Path
from orchestrator.adapters import ctkrun
experiment = ctkrun.load_experiment_file(Path(sys.argv[1]))
work = Path(sys.argv[2])
outcome = ctkrun.run_experiment_with_phases(experiment, phases=ctkrun.NoPhases(), log_path=work / "ctk.log")
(work / "journal.json").write_text(ctkrun.journal_json(outcome), encoding="utf-8")
sys.exit(outcome.exit_code)
"""


def timed(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    chaos_times: list[float] = []
    drill_times: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        settings = work / "settings.yaml"
        settings.write_text("{}\n", encoding="utf-8")
        journal = str(work / "j.json")
        chaos = [str(CHAOS), "--settings", str(settings), "run", "--journal-path", journal, str(EXPERIMENT)]
        drill = [sys.executable, "-c", DRILL, str(EXPERIMENT), str(work)]
        for _ in range(n):
            chaos_times.append(timed(chaos, work))
            drill_times.append(timed(drill, work))
    c, d = statistics.median(chaos_times), statistics.median(drill_times)
    print(f"chaos run          median {c:.3f} s  (n={n})")
    print(f"drill ctkrun (-c)  median {d:.3f} s  (n={n})")
    print(f"difference         {d - c:+.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
