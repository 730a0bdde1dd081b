"""`drill demo`: the README's first command, end to end on the real sandbox with the simulated responder."""

from __future__ import annotations

from collections.abc import Callable
from subprocess import CompletedProcess

import pytest

from orchestrator.sandbox import control
from tests.conftest import DrillEnv, read_report, reported_dir, wait_for

pytestmark = pytest.mark.e2e

# Delays the simulated responder uses, from the moment the fault is active.
ACK, DIAGNOSE, MITIGATE, RESOLVE = 2.0, 4.0, 6.0, 9.0


def test_demo_reports_the_simulated_timings_and_leaves_auto_restart_on(
    drill_env: DrillEnv, run_drill: Callable[..., CompletedProcess[str]]
) -> None:
    try:
        done = run_drill(
            "demo",
            "--plain",
            "--auto-respond",
            f"ack={ACK}s,diagnose={DIAGNOSE}s,mitigate={MITIGATE}s,resolve={RESOLVE}s",
        )
        assert done.returncode == 0, done.stderr + done.stdout
        report = read_report(reported_dir(done.stdout))
        assert report["outcome"] == "unaided"
        timings = {t["name"]: t for t in report["timings"]}  # type: ignore[attr-defined]
        # acknowledge is from the notification; diagnose from the acknowledgement; the rest from t0.
        assert timings["acknowledge"]["seconds"] == pytest.approx(ACK, abs=1.0)
        assert timings["diagnose"]["seconds"] == pytest.approx(DIAGNOSE - ACK, abs=1.0)
        assert timings["mitigate"]["seconds"] == pytest.approx(MITIGATE, abs=1.0)
        assert timings["resolve"]["seconds"] == pytest.approx(RESOLVE, abs=1.0)
        assert all(not t["censored"] for t in timings.values())
        [policy] = report["policies"]  # type: ignore[misc]
        assert policy["restore_verified"] is True and policy["state"] == "restored"

        client = control.SandboxClient(drill_env.sandbox_home)
        status = client.status()
        assert status.autorestart is True
        assert status.annotations == {}
        # Auto-restart really is back: kill the service once more and the supervisor restarts it.
        killed = client.kill_service()
        restarted = wait_for(
            lambda: (s := client.status()).service.running and s.service.pid != killed and client.healthy(),
            timeout_s=15,
            what="the supervisor to restart the killed service",
        )
        assert restarted
        assert client.status().service.restarts >= 1
    finally:
        control.stop_sandbox(drill_env.sandbox_home)


def test_demo_report_markdown_names_every_timing(
    drill_env: DrillEnv, run_drill: Callable[..., CompletedProcess[str]]
) -> None:
    try:
        done = run_drill("demo", "--plain", "--auto-respond", "ack=0.5s,diagnose=1s,mitigate=1.5s,resolve=4s")
        assert done.returncode == 0, done.stderr
        report_md = reported_dir(done.stdout) / "report.md"
        markdown = report_md.read_text(encoding="utf-8")
        for word in ("acknowledge", "diagnose", "mitigate", "resolve", "supervisor-auto-restart", "unaided"):
            assert word in markdown
        assert (report_md.parent / "journal.jsonl").stat().st_size > 0
    finally:
        control.stop_sandbox(drill_env.sandbox_home)
