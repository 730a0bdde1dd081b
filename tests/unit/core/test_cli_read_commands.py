"""Read-only commands: schema, runs, status, journal, and usage errors that say what to do."""

from __future__ import annotations

import json

import pytest

from orchestrator.cli import main
from tests.conftest import DrillEnv


def test_schema_is_json_schema_of_the_yaml_names(capsys: pytest.CaptureFixture[str]) -> None:
    assert main.main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert set(schema["required"]) == {"apiVersion", "kind", "metadata", "spec"}
    spec = schema["$defs"]["Spec"]["properties"]
    assert {"mode", "target", "policies", "experiment", "participants", "guardrails", "failureMode"} <= set(spec)
    guardrails = schema["$defs"]["Guardrails"]["properties"]
    assert "maxDuration" in guardrails and "abortWhen" in guardrails


def test_runs_on_an_empty_journal(drill_env: DrillEnv, capsys: pytest.CaptureFixture[str]) -> None:
    assert main.main(["runs"]) == 0
    assert "no runs yet" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["status", "latest"], ["journal", "nope"], ["ack", "active", "--as", "alice"]])
def test_missing_runs_are_one_clear_line(
    argv: list[str], drill_env: DrillEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main.main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("drill: error: ") and err.count("\n") == 1
    assert "drill runs" in err or "no run" in err


def test_restore_needs_a_run_or_expired(drill_env: DrillEnv, capsys: pytest.CaptureFixture[str]) -> None:
    assert main.main(["restore"]) == 1
    assert "--expired" in capsys.readouterr().err


def test_bad_auto_respond_is_a_usage_error(drill_env: DrillEnv, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import NO_AUTOMATION

    assert main.main(["run", str(NO_AUTOMATION), "--auto-respond", "wave=1s"]) == 2
    assert "KEY=DURATION" in capsys.readouterr().err
