"""Every signal that ends a session leads to the same restore path as every other abort, and never skips it.

SIGINT (Ctrl-C), SIGTERM, SIGHUP (the terminal closed, the SSH session lost) and SIGQUIT (Ctrl-\\)
are trapped from the moment a run starts. The handler does async-signal-safe work only: it stores
the signal number in a plain attribute, writes a fixed message to file descriptor 2 with
``os.write`` (no buffered stream, no lock) and writes one byte to a self-pipe. A watcher thread
reads that pipe and calls ``on_signal(name)`` outside the handler, so nothing the handler
interrupts (a lock held by ``threading.Event.set``, a half-written ``print``) can deadlock it.

A second signal does not interrupt the restore: it is acknowledged and ignored.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType

TRAPPED: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
NAMES = {
    signal.SIGINT: "SIGINT (Ctrl-C)",
    signal.SIGTERM: "SIGTERM",
    signal.SIGHUP: "SIGHUP (terminal closed)",
    signal.SIGQUIT: "SIGQUIT",
}


def _say(text: bytes) -> None:
    """Best effort: stderr may be a closed terminal (SIGHUP); a failed write must change nothing."""
    with contextlib.suppress(OSError):
        os.write(2, text)


@contextlib.contextmanager
def trapped(on_signal: Callable[[str], None]) -> Iterator[None]:
    """Route the session-ending signals to ``on_signal(name)`` (from a watcher thread) for the duration.

    Outside the main thread signals cannot be trapped; the caller's other abort paths still apply.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    received: list[int] = []  # list.append is atomic; the watcher reads it after the pipe wakes it
    first = {sig: f"\n{NAMES[sig]}: aborting; restoring automation before exiting...\n".encode() for sig in TRAPPED}
    again = {
        sig: f"\n{NAMES[sig]} again: still restoring automation; drill exits when it is safe.\n".encode()
        for sig in TRAPPED
    }

    def handler(signum: int, _frame: FrameType | None) -> None:
        sig = signal.Signals(signum)
        _say(again[sig] if received else first[sig])
        received.append(signum)
        with contextlib.suppress(OSError):  # a full pipe already holds a wake-up byte
            os.write(write_fd, b"x")

    def watch() -> None:
        seen = 0
        while True:
            try:
                data = os.read(read_fd, 64)
            except OSError:
                return
            if not data or b"q" in data:
                return
            while seen < len(received):
                name = NAMES[signal.Signals(received[seen])]
                seen += 1
                if seen == 1:
                    on_signal(name)

    watcher = threading.Thread(target=watch, name="drill-signals", daemon=True)
    watcher.start()
    previous = {sig: signal.signal(sig, handler) for sig in TRAPPED}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        with contextlib.suppress(OSError):
            os.write(write_fd, b"q")
        watcher.join(timeout=2.0)
        for fd in (read_fd, write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
