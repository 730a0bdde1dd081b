"""`drill run` of a ``mode: chaos`` drill wrapping one of the compatibility suite's experiments, as a command.

Shared by the end-to-end comparisons with `chaos run` (``test_ctk_cli_compat``, ``test_ctk_journal_readback``);
the `chaos run` side is ``tests.unit.ctk.harness.chaos_run``.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from orchestrator.sandbox import control
from tests.conftest import drill_cmd, reported_dir
from tests.unit.ctk.harness import DATA, REPO, Side, lines


@dataclass
class DrillResult:
    returncode: int
    output: str
    report: Path | None  # None when drill wrote no report (a failed preflight)
    side: Side | None  # None without a Chaos Toolkit journal (no report, or chaoslib failed)
    lines: list[str] = field(default_factory=list)  # the side effects, in order


@contextmanager
def shared_sandbox(home: Path) -> Iterator[Path]:
    """One sandbox for many chaos-mode runs: chaos mode suspends nothing on it, and each run has its own journal."""
    control.start_sandbox(home, restart_delay_s=0.3)
    try:
        yield home
    finally:
        control.stop_sandbox(home)


def drill_run(
    work: Path,
    name: str,
    *,
    sandbox: Path,
    args: Sequence[str] = (),
    settings: Mapping[str, Any] | None = None,
) -> DrillResult:
    """``drill run --plain [args]`` of a chaos-mode drill running ``tests/data/ctk/<name>.json``, its own home."""
    work.mkdir(parents=True, exist_ok=True)
    drill = {
        "apiVersion": "drill.dev/v1alpha1",
        "kind": "Drill",
        "metadata": {"name": "compat"},
        "spec": {
            "mode": "chaos",
            "target": {"kind": "sandbox", "home": str(sandbox)},
            "experiment": {"path": str(DATA / f"{name}.json")},
        },
    }
    drill_file = work / "drill.yaml"
    drill_file.write_text(yaml.safe_dump(drill), encoding="utf-8")
    options = list(args)
    if settings is not None:
        (work / "settings.yaml").write_text(yaml.safe_dump(dict(settings)), encoding="utf-8")
        options += ["--settings", str(work / "settings.yaml")]
    log = work / "side-effects.log"
    env = dict(
        os.environ,
        CTK_TEST_LOG=str(log),
        PYTHONPATH=str(REPO),
        DRILL_HOME=str(work / "home"),
        DRILL_ARCHIVE=str(work / "archive"),
    )
    env.pop("DRILL_TEST_PAUSE_AT", None)
    done = subprocess.run(
        drill_cmd("run", str(drill_file), "--plain", *options),
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    report = reported_dir(done.stdout) if "report: " in done.stdout else None
    side = None
    if report is not None and (report / "journal.json").exists():
        side = Side(json.loads((report / "journal.json").read_text(encoding="utf-8")), log, lines(log))
    return DrillResult(done.returncode, done.stdout + done.stderr, report, side, lines(log))
