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
