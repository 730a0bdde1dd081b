"""Every way a run can end early takes the same restore path: SIGINT (also twice), SIGTERM, `drill abort`,
a guardrail breach and max duration. Each leaves auto-restart on, verified, and says so in the report."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from orchestrator.policies import base as policy_base
from orchestrator.sandbox import control
from tests.conftest import NO_AUTOMATION, REPO, DrillEnv, copy_drill, drill_cmd, journal_rows, read_report, wait_for

pytestmark = pytest.mark.e2e
TOKEN = "xoxb-fake-token-for-tests"


def run_state(drill_env: DrillEnv) -> str | None:
    rows = journal_rows(drill_env.home, "SELECT state FROM runs ORDER BY created_at DESC LIMIT 1")
    return str(rows[0][0]) if rows else None


def latest_run_id(drill_env: DrillEnv) -> str:
    return str(journal_rows(drill_env.home, "SELECT run_id FROM runs ORDER BY created_at DESC LIMIT 1")[0][0])


def start_run(drill_env: DrillEnv, drill: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        drill_cmd("run", str(drill), "--plain", *extra),
        env=drill_env.env(),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def until_responding(drill_env: DrillEnv, proc: subprocess.Popen[str]) -> None:
    def responding() -> bool:
        assert proc.poll() is None, "drill run exited before responding"
        return run_state(drill_env) == "responding"

    wait_for(responding, timeout_s=30, what="the run to reach responding")


def assert_restored(drill_env: DrillEnv, sandbox: control.SandboxClient) -> None:
    status = sandbox.status()
    assert status.autorestart is True
    assert policy_base.MARKER_KEY not in status.annotations
    assert journal_rows(drill_env.home, "SELECT state FROM suspensions") == [("restored",)]


@pytest.mark.parametrize("signals", [[signal.SIGINT], [signal.SIGINT, signal.SIGINT], [signal.SIGTERM]])
def test_signal_during_responding_restores_and_reports_aborted(
    signals: list[int], drill_env: DrillEnv, sandbox: control.SandboxClient
) -> None:
    proc = start_run(drill_env, NO_AUTOMATION)
    until_responding(drill_env, proc)
    assert sandbox.status().autorestart is False
    for sig in signals:
        proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 4, out + err
    name = "SIGTERM" if signals[0] == signal.SIGTERM else "SIGINT"
    assert f"{name}" in err and "aborted" in err and "automation restored" in err
    if len(signals) > 1:
        # The second Ctrl-C was acknowledged and did not skip restoring.
        assert "still restoring automation" in err or "aborting" in err
    assert "Traceback" not in err
    assert_restored(drill_env, sandbox)
    report = read_report(drill_env.archive / latest_run_id(drill_env))
    assert report["outcome"] == "aborted"
    assert name in str(report["abort_reason"])
    assert report["policies"][0]["restore_verified"] is True  # type: ignore[index]
    # Censored, never invented: nobody acknowledged, so acknowledge has no value but a lower bound.
    ack = next(t for t in report["timings"] if t["name"] == "acknowledge")  # type: ignore[attr-defined]
    assert ack["seconds"] is None and ack["censored"] is True and ack["lower_bound_s"] >= 0


def test_drill_abort_from_another_terminal(
    drill_env: DrillEnv, sandbox: control.SandboxClient, run_drill: Callable[..., CompletedProcess[str]]
) -> None:
    proc = start_run(drill_env, NO_AUTOMATION)
    until_responding(drill_env, proc)
    run_id = latest_run_id(drill_env)
    stranger = run_drill("abort", run_id, "--as", "mallory")
    assert stranger.returncode == 1 and "not a participant" in stranger.stderr
    aborted = run_drill("abort", run_id, "--as", "bob", "-m", "a real incident started")
    assert aborted.returncode == 0, aborted.stderr
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 4, out + err
    assert_restored(drill_env, sandbox)
    report = read_report(drill_env.archive / run_id)
    assert report["outcome"] == "aborted"
    assert "bob" in str(report["abort_reason"]) and "a real incident started" in str(report["abort_reason"])


def test_human_commands_from_another_terminal_are_timed(
    drill_env: DrillEnv, sandbox: control.SandboxClient, run_drill: Callable[..., CompletedProcess[str]]
) -> None:
    proc = start_run(drill_env, NO_AUTOMATION)
    until_responding(drill_env, proc)
    run_id = latest_run_id(drill_env)
    assert run_drill("ack", run_id, "--as", "alice").returncode == 0
    assert run_drill("hint", run_id, "--as", "alice").returncode == 0
    assert run_drill("diagnosed", run_id, "--as", "alice", "-m", "auto-restart is off").returncode == 0
    restart = run_drill("sandbox", "restart")
    assert restart.returncode == 0, restart.stderr
    # A pasted token never reaches the journal or the report.
    assert run_drill("note", run_id, "--as", "bob", "-m", f"good call {TOKEN}").returncode == 0
    # Resolve once the steady state has been seen holding again (the run watches it, not the human).
    wait_for(
        lambda: "steady-state-restored" in run_drill("status", run_id).stdout,
        timeout_s=30,
        what="the run to detect the steady state holding again",
        interval_s=0.3,
    )
    assert run_drill("resolve", run_id, "--as", "alice").returncode == 0
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, out + err
    assert_restored(drill_env, sandbox)
    report = read_report(drill_env.archive / run_id)
    assert report["outcome"] == "with hints"
    assert report["hints_used"] == 1
    events = [e["event"] for e in report["timeline"]]  # type: ignore[attr-defined]
    for expected in (
        "fault-active",
        "notified",
        "acknowledged",
        "hint",
        "diagnosed",
        "steady-state-restored",
        "resolved",
    ):
        assert expected in events
    assert {n["text"] for n in report["notes"]} == {"good call <redacted>"}  # type: ignore[attr-defined]
    for name in ("report.json", "report.md", "journal.jsonl"):
        assert TOKEN not in (drill_env.archive / run_id / name).read_text(encoding="utf-8")
    for db_file in drill_env.home.glob("journal.db*"):  # the database and its write-ahead log
        assert TOKEN.encode() not in db_file.read_bytes()
    timings = {t["name"]: t["seconds"] for t in report["timings"]}  # type: ignore[attr-defined]
    assert all(timings[k] is not None for k in ("acknowledge", "diagnose", "mitigate", "resolve"))
    assert timings["acknowledge"] <= timings["resolve"]  # type: ignore[operator]
    # Per responder: alice acknowledged, asked a hint, diagnosed and resolved; bob only wrote a note.
    [alice] = report["responders"]  # type: ignore[misc]
    assert alice["name"] == "alice" and alice["hints"] == 1
    assert alice["acknowledge_s"] <= alice["diagnose_s"] <= alice["resolve_s"]
    assert alice["mitigated_s"] is None  # she never declared it; the run detected it
    markdown = (drill_env.archive / run_id / "report.md").read_text(encoding="utf-8")
    assert "## Per responder" in markdown and "| alice |" in markdown


def test_guardrail_breach_aborts_and_restores(
    tmp_path: Path, drill_env: DrillEnv, sandbox: control.SandboxClient
) -> None:
    tripwire = tmp_path / "error-budget-exhausted"
    drill = copy_drill(
        tmp_path,
        "guarded",
        guardrails={
            "maxDuration": "10m",
            "checkInterval": "200ms",
            "abortWhen": [
                {
                    "name": "error-budget-left",
                    "provider": {"type": "process", "path": "test", "arguments": f"! -e {tripwire}"},
                    "tolerance": 0,
                }
            ],
        },
    )
    proc = start_run(drill_env, drill)
    until_responding(drill_env, proc)
    assert sandbox.status().autorestart is False
    tripwire.write_text("breach", encoding="utf-8")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 4, out + err
    assert "guardrail 'error-budget-left' breached" in err
    assert_restored(drill_env, sandbox)
    report = read_report(drill_env.archive / latest_run_id(drill_env))
    assert report["outcome"] == "aborted"
    assert "error-budget-left" in str(report["abort_reason"])


def test_max_duration_times_out_with_censored_timings(
    tmp_path: Path, drill_env: DrillEnv, sandbox: control.SandboxClient
) -> None:
    drill = copy_drill(
        tmp_path,
        "short",
        guardrails={"maxDuration": "4s"},
        hints=[],
        detection={"interval": "250ms", "holdWindow": "1s"},
    )
    proc = start_run(drill_env, drill, "--auto-respond", "ack=1s")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, out + err
    assert_restored(drill_env, sandbox)
    report = read_report(drill_env.archive / latest_run_id(drill_env))
    assert report["outcome"] == "timed out"
    timings = {t["name"]: t for t in report["timings"]}  # type: ignore[attr-defined]
    assert timings["acknowledge"]["seconds"] == pytest.approx(1.0, abs=1.0)
    for name in ("mitigate", "resolve"):
        assert timings[name]["seconds"] is None
        assert timings[name]["censored"] is True
        assert 2.0 <= timings[name]["lower_bound_s"] <= 6.0
    assert "timed-out" in [e["event"] for e in report["timeline"]]  # type: ignore[attr-defined]
