"""One supervisor per sandbox home, whatever happens to the folder.

The lock is an abstract unix socket (Linux) named after the home's resolved path. Abstract sockets live in
the kernel, not in the folder: deleting or recreating the home does not release the lock, and the kernel
releases it the moment the process dies, so there is no stale lock to clean up. Connecting to it asks who
holds the home: the holder answers one JSON line (pid, instance, control port), and the kernel vouches for
the pid (``SO_PEERCRED``), so a client reaches the supervisor even while its files are being re-created.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import struct
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

_PREFIX = "\0drill-sandbox-supervisor/"
_ANSWER_MAX = 4096


def address(home: Path) -> str:
    """The abstract socket name for ``home`` (a digest: names are limited to 107 bytes)."""
    digest = hashlib.sha256(str(Path(home).resolve()).encode()).hexdigest()[:40]
    return _PREFIX + digest


class HomeLock:
    """Held by the supervisor for its lifetime. Raises ``OSError`` when another process holds ``home``."""

    def __init__(self, home: Path) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._sock.bind(address(home))
        except OSError:
            self._sock.close()
            raise
        self._sock.listen(16)
        self.hello: Callable[[], dict[str, object]] = dict

    def serve(self) -> None:
        """Answer each connection with ``hello()`` (start after daemonizing: threads do not survive a fork)."""
        threading.Thread(target=self._serve, name="home-lock", daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return  # closed
            with conn, contextlib.suppress(OSError):
                conn.sendall(json.dumps({**self.hello(), "pid": os.getpid()}).encode() + b"\n")

    def close(self) -> None:
        self._sock.close()


def holder(home: Path, *, timeout_s: float = 2.0) -> dict[str, Any] | None:
    """Who holds ``home``: its answer with ``pid`` as the kernel reports it, or None when nobody does."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        try:
            sock.connect(address(home))
        except (ConnectionRefusedError, FileNotFoundError):
            return None
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid = struct.unpack("3i", creds)[0]
        raw = b""
        with contextlib.suppress(OSError):
            while b"\n" not in raw and len(raw) < _ANSWER_MAX:
                chunk = sock.recv(_ANSWER_MAX)
                if not chunk:
                    break
                raw += chunk
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    answer: dict[str, Any] = data if isinstance(data, dict) else {}
    answer["pid"] = pid
    return answer
