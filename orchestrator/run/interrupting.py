"""Work the run must be able to walk away from: the fault's method, a steady-state or guardrail probe.

Chaos Toolkit activities cannot be cancelled from outside (a probe may sit in an HTTP timeout, a
method may run a thousand actions). The run starts such work in a daemon thread and waits for it
*or* for its stop event, whichever comes first, so an abort restores the automation within a poll
interval whatever the experiment is doing. Work walked away from keeps running; its late result
is dropped (``Pending.join`` lets the caller wait for it, bounded, before the rollbacks).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Pending(Generic[T]):
    """Work running in a worker thread."""

    def __init__(self, work: Callable[[], T], *, name: str) -> None:
        self._result: list[T] = []
        self._failure: list[BaseException] = []

        def run() -> None:
            try:
                self._result.append(work())
            except BaseException as exc:  # handed back to the caller by ``result``
                self._failure.append(exc)

        self._thread = threading.Thread(target=run, name=name, daemon=True)
        self._thread.start()

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def join(self, timeout_s: float) -> bool:
        """Wait at most ``timeout_s`` for the work; True when it has finished."""
        self._thread.join(timeout_s)
        return self.done

    def result(self) -> T:
        """The work's result, or its exception raised here. Only once ``done``."""
        if self._failure:
            raise self._failure[0]
        return self._result[0]


def until_done_or_stopped(
    work: Callable[[], T], *, stop: threading.Event, poll_s: float, name: str
) -> tuple[Pending[T], T | None]:
    """Run ``work`` in a worker until it finishes or ``stop`` is set; (pending, its result or None if stopped)."""
    pending = Pending(work, name=name)
    while not pending.done and not stop.is_set():
        pending.join(poll_s)
    return pending, (pending.result() if pending.done else None)
