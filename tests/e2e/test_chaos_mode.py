"""Chaos mode: a plain experiment (hypothesis, method, hypothesis again, rollbacks), no humans, no suspension."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import pytest
import yaml

from orchestrator.sandbox import control
from tests.conftest import REPO, DrillEnv, read_report, reported_dir

pytestmark = pytest.mark.e2e


def _chaos_drill(folder: Path, method: list[dict[str, object]]) -> Path:
    experiment = json.loads((REPO / "experiments" / "sandbox-kill-service.json").read_text(encoding="utf-8"))
    experiment["method"] = method
    (folder / "exp.json").write_text(json.dumps(experiment), encoding="utf-8")
    drill = {
        "apiVersion": "drill.dev/v1alpha1",
        "kind": "Drill",
        "metadata": {"name": "plain-chaos"},
        "spec": {"mode": "chaos", "target": {"kind": "sandbox"}, "experiment": {"path": "exp.json"}},
    }
    path = folder / "chaos.yaml"
    path.write_text(yaml.safe_dump(drill), encoding="utf-8")
    return path


def _report(done: CompletedProcess[str]) -> dict[str, object]:
    return read_report(reported_dir(done.stdout + done.stderr))


def test_harmless_method_keeps_the_hypothesis(
    tmp_path: Path, drill_env: DrillEnv, sandbox: control.SandboxClient, run_drill: Callable[..., CompletedProcess[str]]
) -> None:
    method = [{"type": "action", "name": "nothing", "provider": {"type": "process", "path": "true"}}]
    done = run_drill("run", str(_chaos_drill(tmp_path, method)), "--plain")
    assert done.returncode == 0, done.stdout + done.stderr
    assert _report(done)["outcome"] == "hypothesis held"


def test_killing_with_automation_off_deviates(
    tmp_path: Path, drill_env: DrillEnv, sandbox: control.SandboxClient, run_drill: Callable[..., CompletedProcess[str]]
) -> None:
    sandbox.set_autorestart(False)  # nothing will bring it back before the second hypothesis check
    method = [
        {
            "type": "action",
            "name": "kill",
            "provider": {
                "type": "python",
                "module": "orchestrator.sandbox.chaos",
                "func": "kill_service",
                "arguments": {"home": "${sandbox_home}"},
            },
        }
    ]
    done = run_drill("run", str(_chaos_drill(tmp_path, method)), "--plain")
    assert done.returncode == 3, done.stdout + done.stderr
    report = _report(done)
    assert report["outcome"] == "deviated"
    assert sandbox.healthy()  # the rollback ran
