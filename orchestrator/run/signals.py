"""SIGINT and SIGTERM lead to the same restore path as every other abort, and never skip it.

The handler only records the request; the engine notices it at its next step and restores.
A second Ctrl-C does not interrupt the restore: it is acknowledged and ignored.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType

_NAMES = {signal.SIGINT: "SIGINT (Ctrl-C)", signal.SIGTERM: "SIGTERM"}


@contextlib.contextmanager
def trapped(on_signal: Callable[[str], None]) -> Iterator[None]:
    """Route SIGINT/SIGTERM to ``on_signal(name)`` for the duration; restores the old handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    count = 0

    def handler(signum: int, _frame: FrameType | None) -> None:
        nonlocal count
        count += 1
        name = _NAMES.get(signal.Signals(signum), str(signum))
        if count == 1:
            sys.stderr.write(f"\n{name}: aborting; restoring automation before exiting...\n")
            on_signal(name)
        else:
            sys.stderr.write(f"\n{name} again: still restoring automation; drill exits when it is safe.\n")

    previous = {s: signal.signal(s, handler) for s in _NAMES}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
