"""The relay wakes the engine's thread as soon as chaoslib's run is over, instead of at its next poll."""

from __future__ import annotations

import threading
import time

import pytest

from orchestrator import errors
from orchestrator.adapters import ctkrun
from orchestrator.run import relaying


def test_next_returns_at_once_when_the_run_finishes() -> None:
    relay = relaying.Relay()
    worker = threading.Thread(target=relay.finished)
    started = time.monotonic()
    worker.start()
    assert relay.next(30.0) is None  # woken by the end of the run, not by the timeout
    assert time.monotonic() - started < 5.0
    worker.join()
    started = time.monotonic()
    assert relay.next(30.0) is None  # and later calls do not wait either
    assert time.monotonic() - started < 5.0


def test_phase_calls_made_before_the_end_come_first() -> None:
    relay = relaying.Relay()
    answered: list[bool] = []

    def worker() -> None:
        relay.after_method([{"activity": {"name": "inject"}, "status": "succeeded"}])
        answered.append(True)
        relay.finished()

    thread = threading.Thread(target=worker)
    thread.start()
    request = relay.next(30.0)
    assert request is not None and request.phase == "after_method"
    request.answered.set()
    assert relay.next(30.0) is None
    thread.join(30.0)
    assert answered == [True]


def test_ctkrun_tells_the_phases_the_run_is_over_even_when_it_refuses_the_experiment() -> None:
    relay = relaying.Relay()
    with pytest.raises(errors.ExperimentError, match="invalid experiment"):
        ctkrun.run_experiment_with_phases({"title": "no method"}, phases=relay)
    started = time.monotonic()
    assert relay.next(30.0) is None
    assert time.monotonic() - started < 5.0
