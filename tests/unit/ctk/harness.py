"""Run one experiment both ways, ``chaos run`` in a subprocess and ``ctkrun`` in process, and compare."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from orchestrator.adapters import ctkrun

REPO = Path(__file__).resolve().parents[3]
DATA = REPO / "tests" / "data" / "ctk"
CHAOS = Path(sys.executable).with_name("chaos")
_STAMP = re.compile(r" \d+\.\d+$")


def experiment(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))
    return loaded


def lines(log: Path) -> list[str]:
    if not log.exists():
        return []
    return [_STAMP.sub("", line) for line in log.read_text(encoding="utf-8").splitlines()]


def stamped(log: Path) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in log.read_text(encoding="utf-8").splitlines():
        label, _, stamp = line.partition(" ")
        if stamp:
            out[label] = float(stamp)
    return out


@dataclass
class Side:
    """What one way of running produced, in the terms the two are compared in."""

    journal: dict[str, Any]
    log: Path
    lines: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        return str(self.journal["status"])

    @property
    def deviated(self) -> bool:
        return bool(self.journal["deviated"])

    @property
    def run(self) -> list[tuple[str, str]]:
        return [(r["activity"].get("name"), r["status"]) for r in self.journal.get("run") or []]

    @property
    def rollbacks(self) -> list[tuple[str, str]]:
        return [(r["activity"].get("name"), r["status"]) for r in self.journal.get("rollbacks") or []]

    @property
    def steady_states(self) -> tuple[Any, Any, int]:
        ss = self.journal["steady_states"]

        def met(state: Mapping[str, Any] | None) -> Any:
            return None if state is None else state["steady_state_met"]

        return met(ss["before"]), met(ss["after"]), len(ss.get("during") or [])

    def summary(self, *, ordered: bool = True) -> dict[str, Any]:
        return {
            "status": self.status,
            "deviated": self.deviated,
            "run": self.run if ordered else sorted(self.run),  # background runs are journaled as they end
            "rollbacks": self.rollbacks if ordered else sorted(self.rollbacks),
            "steady_states": self.steady_states,
            "lines": self.lines if ordered else sorted(self.lines),
        }


@dataclass
class ChaosResult:
    returncode: int
    stderr: str
    side: Side | None


def chaos_run(
    tmp_path: Path, name: str, *, args: Sequence[str] = (), settings: Mapping[str, Any] | None = None
) -> ChaosResult:
    """``chaos --settings S run --journal-path J [args] experiment.json``, in a subprocess."""
    work = tmp_path / "chaos"
    work.mkdir(parents=True, exist_ok=True)
    log = work / "side-effects.log"
    settings_path = work / "settings.yaml"
    settings_path.write_text(yaml.safe_dump(dict(settings or {})), encoding="utf-8")
    journal_path = work / "journal.json"
    env = dict(os.environ, CTK_TEST_LOG=str(log), PYTHONPATH=str(REPO))
    command = [str(CHAOS), "--settings", str(settings_path), "run", "--journal-path", str(journal_path)]
    proc = subprocess.run(
        [*command, *args, str(DATA / f"{name}.json")],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    side = None
    if journal_path.exists():
        side = Side(json.loads(journal_path.read_text(encoding="utf-8")), log, lines(log))
    return ChaosResult(proc.returncode, proc.stderr + proc.stdout, side)


def drill_run(
    tmp_path: Path,
    monkeypatch: Any,
    name: str,
    *,
    phases: ctkrun.Phases | None = None,
    **kwargs: Any,
) -> tuple[ctkrun.CtkOutcome, Side]:
    """``run_experiment_with_phases`` in this process, with its own side-effect log."""
    work = tmp_path / "drill"
    work.mkdir(parents=True, exist_ok=True)
    log = work / "side-effects.log"
    monkeypatch.setenv("CTK_TEST_LOG", str(log))
    outcome = ctkrun.run_experiment_with_phases(
        experiment(name), phases=phases or ctkrun.NoPhases(), log_path=work / "chaostoolkit.log", **kwargs
    )
    return outcome, Side(outcome.journal, log, lines(log))


class RecordingPhases:
    """Phases that append ``phase:<name>`` to the side-effect log, so their place among the activities shows."""

    def __init__(self, *, interrupt_at: str | None = None, fail_at: str | None = None) -> None:
        self.interrupt_at = interrupt_at
        self.fail_at = fail_at
        self.method_journal: list[dict[str, Any]] | None = None

    def _mark(self, name: str) -> None:
        with Path(os.environ["CTK_TEST_LOG"]).open("a", encoding="utf-8") as f:
            f.write(f"phase:{name}\n")
        if self.interrupt_at == name:
            raise ctkrun.Interrupt(f"stop at {name}")
        if self.fail_at == name:
            raise RuntimeError(f"{name} broke")

    def before_method(self) -> None:
        self._mark("before_method")

    def after_method(self, method_journal: list[dict[str, Any]]) -> None:
        self.method_journal = method_journal
        self._mark("after_method")

    def on_interrupt(self) -> None:
        self._mark("on_interrupt")
