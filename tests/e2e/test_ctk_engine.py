"""The experiment runs under chaoslib's own runner, drill's phases around its method.

A safeguard control that refuses the run leaves nothing changed; a finished run archives the
Chaos Toolkit journal (the one `chaos run` writes) beside its report.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from orchestrator.policies import base as policy_base
from orchestrator.sandbox import control
from tests.conftest import NO_AUTOMATION, REPO, DrillEnv, copy_drill, journal_rows, reported_dir

pytestmark = pytest.mark.e2e
EXPERIMENT = REPO / "experiments" / "sandbox-kill-service.json"


def _with_experiment(tmp_path: Path, name: str, **changes: object) -> Path:
    experiment = json.loads(EXPERIMENT.read_text(encoding="utf-8"))
    experiment.update(changes)
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(experiment), encoding="utf-8")
    drill = copy_drill(tmp_path, name, base=NO_AUTOMATION)
    text = drill.read_text(encoding="utf-8")
    drill.write_text(text.replace(str(EXPERIMENT.resolve()), str(path)), encoding="utf-8")
    assert str(path) in drill.read_text(encoding="utf-8")
    return drill


def test_a_safeguard_that_refuses_leaves_nothing_changed(
    tmp_path: Path, drill_env: DrillEnv, sandbox: control.SandboxClient, run_drill: Callable[..., CompletedProcess[str]]
) -> None:
    log = tmp_path / "ctk.log"
    drill = _with_experiment(
        tmp_path,
        "freeze",
        controls=[{"name": "change-freeze", "provider": {"type": "python", "module": "tests.unit.ctk.refuse"}}],
    )
    before = sandbox.status()
    done = run_drill("run", str(drill), "--plain", "--auto-respond", "ack=0.2s", CTK_TEST_LOG=str(log))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "nothing was changed" in done.stderr and "Traceback" not in done.stderr
    assert log.read_text(encoding="utf-8").splitlines() == ["safeguard:refused"]
    after = sandbox.status()
    assert after.autorestart is True and policy_base.MARKER_KEY not in after.annotations
    assert after.service.pid == before.service.pid and after.service.restarts == before.service.restarts  # no fault
    assert journal_rows(drill_env.home, "SELECT state FROM suspensions") == []
    assert journal_rows(drill_env.home, "SELECT state, outcome FROM runs") == [("failed", "failed")]


def test_the_chaos_toolkit_journal_is_archived_beside_the_report(
    drill_env: DrillEnv, sandbox: control.SandboxClient, run_drill: Callable[..., CompletedProcess[str]]
) -> None:
    done = run_drill("run", str(NO_AUTOMATION), "--plain", "--auto-respond", "ack=0.2s,mitigate=0.4s,resolve=0.8s")
    assert done.returncode == 0, done.stdout + done.stderr
    folder = reported_dir(done.stdout)
    journal = json.loads((folder / "journal.json").read_text(encoding="utf-8"))
    assert journal["status"] == "completed" and journal["deviated"] is False
    assert [r["activity"]["name"] for r in journal["run"]] == ["kill-the-service"]
    assert [(r["activity"]["name"], r["status"]) for r in journal["rollbacks"]] == [
        ("ensure-the-service-runs", "succeeded")
    ]
    assert journal["steady_states"]["before"]["steady_state_met"] is True
    assert journal["experiment"]["title"] == "The sandbox service dies"
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert "journal.json" in json.dumps(manifest)


QUICK = "ack=0.2s,mitigate=0.4s,resolve=0.8s"


def test_rollback_strategy_from_the_command_line_overrides_the_experiment(
    drill_env: DrillEnv, sandbox: control.SandboxClient, run_drill: Callable[..., CompletedProcess[str]]
) -> None:
    done = run_drill("run", str(NO_AUTOMATION), "--plain", "--auto-respond", QUICK, "--rollback-strategy", "never")
    assert done.returncode == 0, done.stdout + done.stderr
    journal = json.loads((reported_dir(done.stdout) / "journal.json").read_text(encoding="utf-8"))
    assert journal["rollbacks"] == []  # the experiment says "always"; the command line says "never"
    assert sandbox.status().autorestart is True
    # drill does not claim the fault was undone: the rollback step failed, no "rolled back" on the timeline
    [(actual, data)] = journal_rows(drill_env.home, "SELECT actual, data FROM events WHERE name = 'rollback'")
    assert actual.startswith("none of the experiment's 1 rollback(s) played: Chaos Toolkit's rollback strategy 'never'")
    assert "the fault may still be in place" in actual and json.loads(data)["ok"] is False
    assert journal_rows(drill_env.home, "SELECT count(*) FROM events WHERE name = 'rolled-back'") == [(0,)]


def test_dry_actions_injects_no_fault(
    drill_env: DrillEnv, sandbox: control.SandboxClient, run_drill: Callable[..., CompletedProcess[str]]
) -> None:
    pid = sandbox.status().service.pid
    done = run_drill(
        "run", str(NO_AUTOMATION), "--plain", "--auto-respond", "ack=0.2s,resolve=0.6s", "--dry", "actions"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert sandbox.status().service.pid == pid  # the kill action was skipped
    journal = json.loads((reported_dir(done.stdout) / "journal.json").read_text(encoding="utf-8"))
    assert journal["experiment"]["dry"] == "actions"


def test_vars_reach_drills_own_probes_and_bad_var_files_change_nothing(
    tmp_path: Path, drill_env: DrillEnv, sandbox: control.SandboxClient, run_drill: Callable[..., CompletedProcess[str]]
) -> None:
    # --var overrides the experiment's configuration for drill's preflight probes too: nothing answers there.
    done = run_drill("run", str(NO_AUTOMATION), "--plain", "--var", "sandbox_url=http://127.0.0.1:9")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "steady state holds" in done.stderr and "nothing was changed" in done.stderr
    missing = run_drill("run", str(NO_AUTOMATION), "--plain", "--var-file", str(tmp_path / "nope.json"))
    assert missing.returncode != 0 and "--var-file" in missing.stderr and "Traceback" not in missing.stderr
    status = sandbox.status()
    assert status.autorestart is True and policy_base.MARKER_KEY not in status.annotations
    assert journal_rows(drill_env.home, "SELECT state FROM suspensions") == []
