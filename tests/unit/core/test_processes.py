"""A process is identified by host, PID and start time: a reused PID is never taken for the run."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from orchestrator import processes


def test_this_process_is_not_gone() -> None:
    assert processes.owner_gone(processes.owner_id()) is False


def test_a_live_pid_with_another_start_time_is_a_reused_pid() -> None:
    started = processes.start_time(os.getpid())
    assert started is not None
    assert processes.owner_gone(f"{socket.gethostname()}:{os.getpid()}:{started + 1}") is True


def test_a_dead_pid_is_gone_and_another_host_is_never_judged_here() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=30)
    assert processes.owner_gone(f"{socket.gethostname()}:{child.pid}:1") is True
    assert processes.owner_gone(f"some-other-host:{child.pid}:1") is False
    assert processes.owner_gone("garbage") is False
