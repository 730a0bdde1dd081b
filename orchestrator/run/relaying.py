"""The experiment runs in a worker under chaoslib; drill's phases run in the engine's own thread.

chaoslib calls drill's control from its worker at two moments (before the method, after it). The
``Relay`` hands each call to the engine's thread and blocks the worker until the engine answers:
the suspension, the human response and the restore all happen in one thread, the one that also
reacts to aborts and signals, so a restore never races a suspension. An abort while the worker
is inside chaoslib (the method, a probe) is acted on at once by the engine's thread; the worker's
next phase call is answered "stop" without waiting. When the worker's run is over, ``finished`` wakes the
engine's thread at once (instead of at its next poll): a run's end costs no idle wait.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from typing import Any

from orchestrator.adapters import ctkrun


@dataclass
class Request:
    """One phase call from chaoslib's worker, waiting for the engine's answer."""

    phase: str  # "before_method" | "after_method" | "on_interrupt"
    runs: list[dict[str, Any]] = field(default_factory=list)
    answered: threading.Event = field(default_factory=threading.Event)
    stop: bool = False  # the engine's answer: stop the experiment here (chaoslib's InterruptExecution)


_ENDING_POLL_S = 0.005


class Relay:
    """drill's :class:`ctkrun.Phases`, relayed to the engine's thread."""

    def __init__(self) -> None:
        self._requests: queue.Queue[Request] = queue.Queue()
        self._closed = threading.Event()
        self._finished = threading.Event()
        self._end = Request("finished")  # queued by ``finished``: wakes ``next``, never handed to the engine

    # -- the worker's side (chaoslib calls these) ------------------------------------------------

    def _ask(self, request: Request) -> Request:
        if self._closed.is_set():
            request.stop = True
            return request
        self._requests.put(request)
        while not request.answered.wait(0.05):
            if self._closed.is_set():  # the engine stopped listening (an abort): stop here
                request.stop = True
                break
        return request

    def before_method(self) -> None:
        if self._ask(Request("before_method")).stop:
            # Nothing of the experiment ran: no rollback to play, whatever the rollback strategy.
            raise ctkrun.Abandon("drill stopped before the fault")

    def after_method(self, method_journal: list[dict[str, Any]]) -> None:
        self._ask(Request("after_method", runs=list(method_journal)))  # never interrupts: rollbacks must play

    def on_interrupt(self) -> None:
        self._ask(Request("on_interrupt"))

    def finished(self) -> None:
        """The run is over: no phase call will follow (``ctkrun`` calls this last, whatever happened)."""
        self._finished.set()
        self._requests.put(self._end)

    # -- the engine's side ----------------------------------------------------------------------

    def next(self, timeout_s: float) -> Request | None:
        """The worker's next phase call, or None after ``timeout_s`` (at once when the run is over).

        Once the run is over, the worker thread is ending: the caller, which checks that it has, is kept
        waiting a few milliseconds at most.
        """
        if self._finished.is_set():
            timeout_s = min(timeout_s, _ENDING_POLL_S)
        try:
            request = self._requests.get(timeout=timeout_s)
        except queue.Empty:
            return None
        return None if request is self._end else request

    def close(self) -> None:
        """Stop listening: pending and later phase calls are answered "stop" at once."""
        self._closed.set()
        while True:
            try:
                request = self._requests.get_nowait()
            except queue.Empty:
                return
            request.stop = True
            request.answered.set()
