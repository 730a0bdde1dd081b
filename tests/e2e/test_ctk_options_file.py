"""`chaos run`'s options kept in the drill file (``spec.experiment.chaos``): each has its effect through
`drill run`, a bad one is refused naming the drill file and the field before anything changes, and the
command line overrides them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import pytest
import yaml

from orchestrator.policies import base as policy_base
from orchestrator.sandbox import control
from tests.conftest import REPO, DrillEnv, copy_drill, journal_rows, reported_dir

pytestmark = pytest.mark.e2e
SANDBOX_EXPERIMENT = REPO / "experiments" / "sandbox-kill-service.json"
CTK = REPO / "tests" / "data" / "ctk"
QUICK = "ack=0.2s,mitigate=0.4s,resolve=0.8s"
Run = Callable[..., CompletedProcess[str]]


def _sandbox_drill(folder: Path, chaos: dict[str, Any]) -> Path:
    """The no-automation example with ``chaos`` options in its experiment block."""
    return copy_drill(folder, "with-options", experiment={"path": str(SANDBOX_EXPERIMENT), "chaos": chaos})


def _chaos_drill(folder: Path, experiment: str, chaos: dict[str, Any]) -> Path:
    """A ``mode: chaos`` drill on the sandbox running ``tests/data/ctk/<experiment>.json`` with ``chaos`` options."""
    drill = {
        "apiVersion": "drill.dev/v1alpha1",
        "kind": "Drill",
        "metadata": {"name": f"options-{experiment}"},
        "spec": {
            "mode": "chaos",
            "target": {"kind": "sandbox"},
            "experiment": {"path": str(CTK / f"{experiment}.json"), "chaos": chaos},
        },
    }
    path = folder / f"{experiment}.yaml"
    path.write_text(yaml.safe_dump(drill), encoding="utf-8")
    return path


def _journal(done: CompletedProcess[str]) -> dict[str, Any]:
    assert done.returncode in (0, 3), done.stdout + done.stderr
    loaded: dict[str, Any] = json.loads((reported_dir(done.stdout) / "journal.json").read_text(encoding="utf-8"))
    return loaded


def _lines(log: Path) -> list[str]:
    return log.read_text(encoding="utf-8").splitlines()


def _unchanged(drill_env: DrillEnv, sandbox: control.SandboxClient, pid: int | None) -> None:
    status = sandbox.status()
    assert status.autorestart is True and policy_base.MARKER_KEY not in status.annotations
    assert status.service.pid == pid
    assert journal_rows(drill_env.home, "SELECT state FROM suspensions") == []


def test_rollback_strategy_never_in_the_file_plays_no_rollback_and_the_command_line_overrides_it(
    tmp_path: Path, drill_env: DrillEnv, sandbox: control.SandboxClient, run_drill: Run
) -> None:
    drill = _sandbox_drill(tmp_path, {"rollbackStrategy": "never"})  # the experiment itself says "always"
    journal = _journal(run_drill("run", str(drill), "--plain", "--auto-respond", QUICK))
    assert journal["rollbacks"] == []
    journal = _journal(
        run_drill("run", str(drill), "--plain", "--auto-respond", QUICK, "--rollback-strategy", "always")
    )
    assert [(r["activity"]["name"], r["status"]) for r in journal["rollbacks"]] == [
        ("ensure-the-service-runs", "succeeded")
    ]
    assert sandbox.status().autorestart is True


def test_dry_actions_in_the_file_kills_nothing(
    tmp_path: Path, drill_env: DrillEnv, sandbox: control.SandboxClient, run_drill: Run
) -> None:
    pid = sandbox.status().service.pid
    drill = _sandbox_drill(tmp_path, {"dry": "actions"})
    journal = _journal(run_drill("run", str(drill), "--plain", "--auto-respond", "ack=0.2s,resolve=0.6s"))
    assert sandbox.status().service.pid == pid  # the kill action was skipped
    assert journal["experiment"]["dry"] == "actions"
    assert [(r["activity"]["name"], r["status"]) for r in journal["run"]] == [("kill-the-service", "succeeded")]


def test_vars_in_the_file_redirect_the_steady_state_probe_and_change_nothing(
    tmp_path: Path, drill_env: DrillEnv, sandbox: control.SandboxClient, run_drill: Run
) -> None:
    pid = sandbox.status().service.pid
    drill = _sandbox_drill(tmp_path, {"vars": {"sandbox_url": "http://127.0.0.1:9"}})  # nothing answers there
    done = run_drill("run", str(drill), "--plain", "--auto-respond", QUICK)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "steady state holds" in done.stderr and "nothing was changed" in done.stderr
    _unchanged(drill_env, sandbox, pid)
    # the command line's --var overrides the file's: the probe finds the sandbox again and the drill runs
    url = sandbox.status().url
    done = run_drill("run", str(drill), "--plain", "--auto-respond", QUICK, "--var", f"sandbox_url={url}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert _journal(done)["steady_states"]["before"]["steady_state_met"] is True


def test_vars_and_var_files_reach_chaoslib_in_chaos_run_order_under_the_command_line(
    tmp_path: Path, drill_env: DrillEnv, sandbox: control.SandboxClient, run_drill: Run
) -> None:
    (tmp_path / "file.json").write_text(json.dumps({"configuration": {"who": "var-file"}}), encoding="utf-8")
    (tmp_path / "cli.json").write_text(json.dumps({"configuration": {"who": "cli-var-file"}}), encoding="utf-8")

    def who(chaos: dict[str, Any], *args: str) -> list[str]:
        log = tmp_path / f"log-{len(list(tmp_path.glob('log-*')))}"
        done = run_drill(
            "run", str(_chaos_drill(tmp_path, "collision", chaos)), "--plain", *args, CTK_TEST_LOG=str(log)
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return [line for line in _lines(log) if line.startswith("who=")]

    assert who({}) == ["who=experiment"]
    assert who({"varFiles": ["file.json"]}) == ["who=var-file"]  # relative to the drill file, not the cwd
    assert who({"vars": {"who": "drill-file"}, "varFiles": ["file.json"]}) == ["who=drill-file"]
    assert who({"vars": {"who": "drill-file"}}, "--var", "who=cli") == ["who=cli"]
    assert who({"varFiles": ["file.json"]}, "--var-file", str(tmp_path / "cli.json")) == ["who=cli-var-file"]
    # every var wins over every var file, as with `chaos run --var ... --var-file ...`
    assert who({"vars": {"who": "drill-file"}}, "--var-file", str(tmp_path / "cli.json")) == ["who=drill-file"]


def test_strategies_and_settings_in_the_file_and_the_command_line_over_them(
    tmp_path: Path, drill_env: DrillEnv, sandbox: control.SandboxClient, run_drill: Run
) -> None:
    refuse = {"controls": {"safeguard": {"provider": {"type": "python", "module": "tests.unit.ctk.refuse"}}}}
    (tmp_path / "refuse.yaml").write_text(yaml.safe_dump(refuse), encoding="utf-8")
    (tmp_path / "empty.yaml").write_text("{}\n", encoding="utf-8")
    drill = _chaos_drill(tmp_path, "plain", {"hypothesisStrategy": "after-method-only", "settings": "refuse.yaml"})
    log = tmp_path / "refused.log"
    done = run_drill("run", str(drill), "--plain", CTK_TEST_LOG=str(log))
    assert done.returncode == 2, done.stdout + done.stderr  # the settings' global safeguard refused the run
    assert "nothing was changed" in done.stderr
    assert _lines(log)[-1] == "safeguard:refused" and "inject" not in _lines(log)

    log = tmp_path / "after-only.log"
    done = run_drill("run", str(drill), "--plain", "--settings", str(tmp_path / "empty.yaml"), CTK_TEST_LOG=str(log))
    journal = _journal(done)
    assert journal["steady_states"]["before"] is None and journal["steady_states"]["after"] is not None

    log = tmp_path / "default.log"
    done = run_drill(
        "run",
        str(drill),
        "--plain",
        "--settings",
        str(tmp_path / "empty.yaml"),
        "--hypothesis-strategy",
        "default",
        CTK_TEST_LOG=str(log),
    )
    assert _journal(done)["steady_states"]["before"]["steady_state_met"] is True


BAD = [
    ({"varFiles": ["vars.json", "missing.yaml"]}, "spec.experiment.chaos.varFiles[1]", "run"),
    ({"settings": "missing-settings.yaml"}, "spec.experiment.chaos.settings", "run"),
    ({"varFiles": ["missing.env"]}, "spec.experiment.chaos.varFiles[0]", "validate"),
    ({"rollbackStrategy": "sometimes"}, "spec.experiment.chaos.rollbackStrategy", "run"),
    ({"dry": "everything"}, "spec.experiment.chaos.dry", "validate"),
    ({"vars": "who=cli"}, "spec.experiment.chaos.vars", "run"),
]


@pytest.mark.parametrize("bad", BAD, ids=[field.rsplit(".", 1)[1] + "-" + command for _, field, command in BAD])
def test_a_bad_option_in_the_file_is_refused_naming_the_file_and_field_and_nothing_changes(
    tmp_path: Path,
    drill_env: DrillEnv,
    sandbox: control.SandboxClient,
    run_drill: Run,
    bad: tuple[dict[str, Any], str, str],
) -> None:
    chaos, field, command = bad
    (tmp_path / "vars.json").write_text(json.dumps({"configuration": {}}), encoding="utf-8")
    pid = sandbox.status().service.pid
    drill = _sandbox_drill(tmp_path, chaos)
    args = ("run", str(drill), "--plain", "--auto-respond", QUICK) if command == "run" else ("validate", str(drill))
    done = run_drill(*args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"{drill}:" in done.stderr and field in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    _unchanged(drill_env, sandbox, pid)
    assert journal_rows(drill_env.home, "SELECT run_id FROM runs") == []  # refused before any run was created
