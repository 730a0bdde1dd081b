"""The sandbox folder deleted mid-suspension: still one supervisor, visible, and restore verifies against it.

The bug this guards: the old supervisor kept running with auto-restart off and no files, `drill sandbox start`
started a second one for the same home, and restore "verified" against the new one.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator import errors
from orchestrator.policies import base
from orchestrator.processes import is_process_alive
from orchestrator.restore import markers
from orchestrator.sandbox import control
from orchestrator.targets import sandbox as sandbox_target
from tests.conftest import REPO, DrillEnv, drill_cmd, wait_for

WAIT_S = 10.0


def _supervisors(home: Path) -> list[int]:
    """Supervisor processes for ``home``, from the process table (not from any file the test could lose)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if (
            b"orchestrator.sandbox.supervisor" in args
            and str(home).encode() in args
            and is_process_alive(int(proc.name))
        ):
            found.append(int(proc.name))
    return found


def _files_back(home: Path, instance: str) -> bool:
    try:
        state = json.loads((home / "state.json").read_text())
        info = json.loads((home / "supervisor.json").read_text())
    except (OSError, ValueError):
        return False
    return state.get("instance") == instance and info.get("instance") == instance and (home / "service.pid").exists()


def _claim_and_suspend(target: sandbox_target.SandboxTarget, run_id: str) -> tuple[base.Suspender, dict[str, object]]:
    suspender = target.suspender("sandbox-autorestart", "autorestart")
    marker = base.Marker(
        run_id=run_id, policy="autorestart", kind="sandbox-autorestart", original={}, deadline_at=time.time() + 3600
    )
    original = suspender.claim(marker)
    suspender.suspend(run_id=run_id)
    assert suspender.verify_suspended(run_id=run_id)
    return suspender, original


def test_folder_deleted_mid_suspension_one_supervisor_restores_from_its_markers(
    drill_env: DrillEnv, sandbox: control.SandboxClient
) -> None:
    home = drill_env.sandbox_home.resolve()
    target = sandbox_target.SandboxTarget(home)
    _claim_and_suspend(target, "run-1")
    before = sandbox.status()
    assert _supervisors(home) == [before.supervisor_pid]

    shutil.rmtree(home)
    # The supervisor owns its files: they come back within a second or two, with the suspension in them.
    wait_for(lambda: _files_back(home, before.instance), timeout_s=5.0, what="the supervisor to re-create its files")
    state = json.loads((home / "state.json").read_text())
    assert state["autorestart"] is False and base.MARKER_KEY in state["annotations"]
    assert json.loads((home / "supervisor.json").read_text())["pid"] == before.supervisor_pid

    # `drill sandbox start` finds the live supervisor and starts no second one.
    started = subprocess.run(
        drill_cmd("sandbox", "start"), capture_output=True, text=True, timeout=60,
        env=drill_env.env(), cwd=REPO, check=False,
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    assert "already running" in started.stdout and f"pid {before.supervisor_pid}" in started.stdout
    assert _supervisors(home) == [before.supervisor_pid]
    after = sandbox.status()
    assert (after.supervisor_pid, after.instance, after.autorestart) == (before.supervisor_pid, before.instance, False)

    # No journal anywhere: the marker alone restores it, and the restore verifies against the same instance.
    report = markers.restore_from_markers(target, run_id="run-1", now=time.time(), expired_only=False)
    assert report.ok and len(report.restored) == 1 and "verified" in report.restored[0], report
    restored = sandbox.status()
    assert restored.autorestart is True and base.MARKER_KEY not in restored.annotations
    assert (restored.supervisor_pid, restored.instance) == (before.supervisor_pid, before.instance)
    assert _supervisors(home) == [before.supervisor_pid]


def test_a_second_supervisor_for_a_home_exits_at_once(drill_env: DrillEnv, sandbox: control.SandboxClient) -> None:
    home = drill_env.sandbox_home.resolve()
    pid = sandbox.status().supervisor_pid
    shutil.rmtree(home)  # not even its folder helps a second one in
    assert control.start_sandbox(home).supervisor_pid == pid  # found by its lock, files or not
    second = subprocess.run(
        [sys.executable, "-m", "orchestrator.sandbox.supervisor", "--home", str(home)],
        capture_output=True, text=True, timeout=30, cwd=REPO, check=False,
    )  # fmt: skip
    assert second.returncode == 1 and "another supervisor already owns" in second.stderr
    assert _supervisors(home) == [pid]
    wait_for(lambda: sandbox.status().supervisor_pid == pid, timeout_s=WAIT_S, what="the first supervisor to answer")


def test_restore_never_verifies_against_a_different_supervisor(
    drill_env: DrillEnv, sandbox: control.SandboxClient
) -> None:
    """The object that was claimed is gone (supervisor killed, folder deleted) and a fresh one answers."""
    home = drill_env.sandbox_home.resolve()
    target = sandbox_target.SandboxTarget(home)
    suspender, original = _claim_and_suspend(target, "run-1")
    old = sandbox.status()
    os.kill(old.supervisor_pid, signal.SIGKILL)
    wait_for(lambda: not is_process_alive(old.supervisor_pid), timeout_s=WAIT_S, what="the old supervisor to die")
    assert old.service.pid is not None
    os.kill(old.service.pid, signal.SIGKILL)  # its orphaned service: nothing else knows about it any more
    shutil.rmtree(home)

    fresh = control.start_sandbox(home, restart_delay_s=0.3)
    assert fresh.instance != old.instance and fresh.autorestart is True
    # A fresh suspender (another process's `drill restore`) has only the journal's prior to go by.
    again = target.suspender("sandbox-autorestart", "autorestart")
    for s in (suspender, again):
        with pytest.raises(errors.PolicyError, match=f"not instance {old.instance}"):
            s.restore(original, run_id="run-1")
        with pytest.raises(errors.RestoreVerificationError, match=f"instance {fresh.instance}.*not instance"):
            s.verify_restored(original, run_id="run-1")
    assert sandbox.status().instance == fresh.instance
