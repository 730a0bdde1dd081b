"""drill's phases as a Chaos Toolkit Python control (``provider.module``: this module), for ``ctkrun``.

chaoslib imports this module by its path and calls ``before_method_control``/``after_method_control``
with the control's ``token`` argument, which names the run's :class:`Driver` in :data:`DRIVERS`
(a module dict rather than a context variable: chaoslib may call controls from its own threads).
The driver turns drill's :class:`Interrupt` and any failure of a phase into chaoslib's
``InterruptExecution`` (chaoslib swallows every other exception a control raises and carries on).
"""

from __future__ import annotations

import sys
from typing import Any, Protocol

from chaoslib import exceptions as chaos_exceptions
from chaoslib.run import RunEventHandler

CONTROL_NAME = "orchestrator.adapters.ctkrun_control:drill-phases"


def control_entry(token: str) -> dict[str, Any]:
    """The control declaration chaoslib loads for one run."""
    return {"name": CONTROL_NAME, "provider": {"type": "python", "module": __name__, "arguments": {"token": token}}}


class Interrupt(Exception):  # noqa: N818 (a request, not a failure)
    """Raised by a phase to stop the experiment (chaoslib's ``InterruptExecution``)."""


class Abandon(Interrupt):
    """Raised by ``before_method`` to stop before the fault *without rollbacks*, whatever the strategy.

    chaoslib plays the rollbacks of an interrupted run under the ``always`` strategy even when the
    method never ran; drill stops before the method only when it changed nothing (a refused claim,
    an abort during the suspension), so there is nothing to roll back. chaoslib's own way to skip
    rollbacks is the exit code 30 of ``chaoslib.exit.exit_ungracefully``.
    """


class Phases(Protocol):
    """What drill does around and between chaoslib's steps.

    - ``before_method()``: after the steady-state hypothesis before the method held (and after every other
      control's before-method hook), right before the first method activity. Raising :class:`Interrupt`
      stops the run here: no method activity runs; status ``interrupted``.
    - ``after_method(runs)``: the method finished (background activities included, failed activities
      recorded, as chaoslib does) and no interruption is in flight; before the hypothesis after the method
      and before the rollbacks. ``runs`` is the method's part of the journal. Raising :class:`Interrupt`
      interrupts the run there (chaoslib: no hypothesis after; ``default`` rollbacks are not played).
    - ``on_interrupt()``: chaoslib stopped the run for another reason (an ``InterruptExecution`` from a
      control or activity, a signal, an unexpected error in the method), at most once; if it happens
      during the method, it replaces ``after_method``.

    Any other exception from a phase stops the run as an interruption and is raised again, as the cause
    of a :class:`PhaseError`, once chaoslib has finished (cleanup, after-experiment controls).
    """

    def before_method(self) -> None: ...

    def after_method(self, method_journal: list[dict[str, Any]]) -> None: ...

    def on_interrupt(self) -> None: ...


class NoPhases:
    """Phases that do nothing: the run is then exactly ``chaos run``."""

    def before_method(self) -> None:
        return None

    def after_method(self, method_journal: list[dict[str, Any]]) -> None:
        return None

    def on_interrupt(self) -> None:
        return None


class Driver:
    """One run's phases, called by the control hooks below."""

    def __init__(self, phases: Phases) -> None:
        self.phases = phases
        self.baseline = sys.exc_info()[1]  # an exception the caller is handling is not an interruption
        self.calls: list[str] = []
        self.before_done = False
        self.interrupt_notified = False
        self.by_phase = False
        self.error: BaseException | None = None

    def _call(self, name: str, func: Any, *args: Any) -> None:
        self.calls.append(name)
        try:
            func(*args)
        except Abandon:
            self.by_phase = True
            raise SystemExit(30) from None  # chaoslib: interrupted, rollbacks not played
        except Interrupt as exc:
            self.by_phase = True
            raise chaos_exceptions.InterruptExecution(f"drill stopped the experiment at {name}: {exc}") from exc
        except (KeyboardInterrupt, SystemExit):
            self.by_phase = True  # chaoslib handles these itself: an interruption
            raise
        except Exception as exc:  # chaoslib swallows a control's errors: keep it, stop the run
            self.by_phase = True
            if self.error is None:
                self.error = exc
            raise chaos_exceptions.InterruptExecution(f"drill's {name} failed: {exc}") from exc

    def before_method(self) -> None:
        self._call("before_method", self.phases.before_method)
        self.before_done = True

    def after_method(self, runs: Any) -> None:
        if not self.before_done:
            return  # a before-method hook interrupted: the method never ran
        unwinding = sys.exc_info()[1]  # chaoslib is unwinding the method: an interrupt, a signal, an error
        if unwinding is not None and unwinding is not self.baseline:
            self.interrupted()
            return
        self._call("after_method", self.phases.after_method, list(runs or []))

    def interrupted(self) -> None:
        if self.interrupt_notified or self.by_phase:
            return
        self.interrupt_notified = True
        self.calls.append("on_interrupt")
        try:
            self.phases.on_interrupt()
        except BaseException as exc:  # called from chaoslib's handlers, which swallow errors
            if self.error is None:
                self.error = exc


DRIVERS: dict[str, Driver] = {}


# The control hooks chaoslib calls (``provider.module`` is this module; ``token`` picks the run's Driver).
def before_method_control(context: Any, token: str = "") -> None:
    driver = DRIVERS.get(token)
    if driver is not None:
        driver.before_method()


def after_method_control(context: Any, state: Any = None, token: str = "") -> None:
    driver = DRIVERS.get(token)
    if driver is not None:
        driver.after_method(state)


class Events(RunEventHandler):  # type: ignore[misc]  # chaoslib is untyped
    def __init__(self, driver: Driver) -> None:
        self._driver = driver

    def interrupted(self, experiment: Any, journal: Any) -> None:
        self._driver.interrupted()

    def signal_exit(self) -> None:
        self._driver.interrupted()
