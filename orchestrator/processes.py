"""Process liveness, shared by the sandbox supervisor and the restore path."""

from __future__ import annotations

import os
from pathlib import Path


def is_process_alive(pid: int) -> bool:
    """True if `pid` exists and is not a zombie (a dead daemon may linger unreaped under some inits)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs (or it just vanished): kill(0) said it exists
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat), or None.

    PID and start time together identify a process: a PID reused by another program has another
    start time, so nothing is ever signalled on the strength of a PID alone.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def owner_id() -> str:
    """Who this process is, for ownership records: host, PID and start time."""
    import os
    import socket

    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{start_time(pid) or 0}"


def owner_gone(owner: str) -> bool:
    """True only when ``owner`` (from ``owner_id``) is a process on this host that is confirmed gone.

    A process on another host, or an owner string this cannot parse, is never declared gone here:
    the heartbeat decides for those.
    """
    import socket

    host, _, rest = owner.partition(":")
    pid_text, _, started_text = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if not is_process_alive(pid):
        return True
    started = start_time(pid)
    return started is not None and started_text.isdigit() and int(started_text) not in (0, started)
