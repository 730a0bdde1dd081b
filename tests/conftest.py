"""Fixtures shared by every test folder: an isolated drill home, a real sandbox, the CLI in a subprocess."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator import settings
from orchestrator.sandbox import control

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "drills" / "examples"
NO_AUTOMATION = EXAMPLES / "sandbox-no-automation.yaml"
AUTO_RECOVERY = EXAMPLES / "sandbox-auto-recovery.yaml"


@dataclass(frozen=True, kw_only=True)
class DrillEnv(settings.Paths):
    """An isolated drill home and archive, with the environment that points the CLI at them."""

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(DRILL_HOME=str(self.home), DRILL_ARCHIVE=str(self.archive), PYTHONUNBUFFERED="1")
        env.pop("DRILL_TEST_PAUSE_AT", None)
        env.update(extra)
        return env


@pytest.fixture
def drill_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DrillEnv:
    env = DrillEnv(home=tmp_path / "home", archive=tmp_path / "archive")
    monkeypatch.setenv("DRILL_HOME", str(env.home))
    monkeypatch.setenv("DRILL_ARCHIVE", str(env.archive))
    monkeypatch.delenv("DRILL_TEST_PAUSE_AT", raising=False)
    return env


@pytest.fixture
def sandbox(drill_env: DrillEnv) -> Iterator[control.SandboxClient]:
    """A real sandbox (supervisor + HTTP service) in the test's drill home; stopped afterwards."""
    control.start_sandbox(drill_env.sandbox_home, restart_delay_s=0.3)
    client = control.SandboxClient(drill_env.sandbox_home)
    try:
        yield client
    finally:
        control.stop_sandbox(drill_env.sandbox_home)


def drill_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "orchestrator.cli.main", *args]


@pytest.fixture
def run_drill(drill_env: DrillEnv) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the drill CLI to completion in a subprocess (bounded)."""

    def run(*args: str, timeout: float = 120.0, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            drill_cmd(*args),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=drill_env.env(**env),
            cwd=REPO,
            check=False,
        )

    return run


def wait_for(predicate: Callable[[], object], *, timeout_s: float, what: str, interval_s: float = 0.05) -> object:
    """Poll ``predicate`` until truthy, at most ``timeout_s``; fail the test saying what was awaited."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(interval_s)


def read_report(report_dir: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((report_dir / "report.json").read_text(encoding="utf-8"))
    return data


def reported_dir(stdout: str) -> Path:
    """The report folder `drill run` / `drill demo` printed (``report: <dir>/report.md``)."""
    match = re.search(r"^report: (.+)/report\.md$", stdout, re.M)
    assert match, f"no report line in:\n{stdout}"
    return Path(match.group(1))


def copy_drill(folder: Path, name: str, *, base: Path = NO_AUTOMATION, **spec_overrides: Any) -> Path:
    """A copy of an example drill in ``folder`` with ``spec`` fields replaced (experiment path made absolute)."""
    data = yaml.safe_load(base.read_text(encoding="utf-8"))
    data["spec"]["experiment"]["path"] = str((base.parent / data["spec"]["experiment"]["path"]).resolve())
    data["spec"].update(spec_overrides)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def journal_rows(home: Path, sql: str, *params: object) -> list[tuple[object, ...]]:
    """Rows from the journal at ``home`` ([] while it does not exist yet); read-only, connection closed."""
    import contextlib
    import sqlite3

    db = home / "journal.db"
    if not db.exists():
        return []
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)) as conn:
        try:
            return list(conn.execute(sql, params).fetchall())
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []
            raise


def paused_run(
    drill_env: DrillEnv, step: str, auto: str, *, drill: Path = NO_AUTOMATION, capture_stdout: bool = False
) -> tuple[subprocess.Popen[str], str]:
    """Start `drill run` held at ``step`` by the test pause hook; returns the process and the run id.

    The run waits there until it is killed or ``<hooks>/<run-id>.<step>.resume`` appears.
    """
    proc = subprocess.Popen(
        drill_cmd("run", str(drill), "--plain", "--auto-respond", auto),
        env=drill_env.env(DRILL_TEST_PAUSE_AT=step),
        cwd=REPO,
        stdout=subprocess.PIPE if capture_stdout else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )

    def paused() -> Path | None:
        assert proc.poll() is None, f"drill run exited early: {proc.communicate()}"
        found = list(drill_env.hooks_dir.glob(f"*.{step}.paused")) if drill_env.hooks_dir.exists() else []
        return found[0] if found else None

    marker = wait_for(paused, timeout_s=30, what=f"drill run to pause at {step}")
    assert isinstance(marker, Path)
    return proc, marker.name.removesuffix(f".{step}.paused")
