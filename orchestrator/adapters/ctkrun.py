"""Run a Chaos Toolkit experiment through chaoslib's own runner, with drill's phases as a control.

Everything in the experiment format (runtime strategies, controls, background activities, refs,
dynamic configuration, ``--var``/``--var-file``, settings with global controls, ``--dry``) keeps
the semantics ``chaos run`` gives it, because chaoslib runs it: this module only does what
``chaostoolkit/commands/run.py`` does around ``run_experiment`` and adds one Python control whose
``before_method_control``/``after_method_control`` hooks call drill's :class:`Phases`.

Where the control goes, so that no other control is applied differently than under ``chaos run``
(chaoslib's ``get_context_controls``): appended to the experiment's top-level ``controls`` when
there are some (at the method level chaoslib applies only those, never global ones), else added
as a global control (with no top-level controls chaoslib applies the global ones at every level).
Either way it comes after every other control at the experiment and method levels, so a
safeguard refusing to run (``InterruptExecution``) stops the run before ``before_method``.
The journal is the one ``chaos run`` writes: the drill control is taken out of its copy of the
experiment again.

chaoslib keeps its global controls in module state: one run at a time per process (a lock).
"""

from __future__ import annotations

import contextvars
import copy
import importlib
import json
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaoslib import caching, convert_vars, merge_vars
from chaoslib import control as chaos_control
from chaoslib import exceptions as chaos_exceptions
from chaoslib import settings as chaos_settings
from chaoslib.experiment import run_experiment
from chaoslib.loader import load_experiment
from chaoslib.run import Runner
from chaoslib.types import Dry, Schedule, Strategy

from orchestrator import errors
from orchestrator.adapters import chaostoolkit
from orchestrator.adapters.ctkrun_control import (
    CONTROL_NAME,
    DRIVERS,
    Abandon,
    Driver,
    Events,
    Interrupt,
    NoPhases,
    Phases,
    control_entry,
)

__all__ = [
    "CONTROL_NAME",
    "Abandon",
    "CtkOutcome",
    "Interrupt",
    "NoPhases",
    "PhaseError",
    "Phases",
    "journal_json",
    "load_experiment_file",
    "load_settings_file",
    "parse_vars",
    "read_var_files",
    "run_experiment_with_phases",
]

_LOGGER_NAME = "chaostoolkit"
HYPOTHESIS_STRATEGIES = (
    "default",
    "before-method-only",
    "after-method-only",
    "during-method-only",
    "continuously",
    "skip",
)
ROLLBACK_STRATEGIES = ("default", "always", "never", "deviated")


@dataclass(frozen=True)
class CtkOutcome:
    """What chaoslib's run produced."""

    journal: dict[str, Any]  # what ``chaos run`` writes to journal.json (see journal_json)
    status: str  # completed | failed | aborted | interrupted
    deviated: bool
    method_ran: bool  # before_method returned and chaoslib went on into the method
    interrupted_by_phase: bool = False  # a phase raised Interrupt (or failed)
    phase_calls: tuple[str, ...] = field(default_factory=tuple)  # the phases called, in order
    rollback_strategy: str = "default"  # the one chaoslib applied (settings, runtime block, command line)

    @property
    def exit_code(self) -> int:
        """``chaos run``'s exit code: 1 when the run did not complete or deviated."""
        return 1 if self.status != "completed" or self.deviated else 0


class PhaseError(errors.ExperimentError):
    """A phase raised something other than :class:`Interrupt`; ``__cause__`` is what it raised."""

    def __init__(self, message: str, outcome: CtkOutcome) -> None:
        super().__init__(message)
        self.outcome = outcome


_RUN_LOCK = threading.Lock()


def load_experiment_file(source: str | Path, settings: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """An experiment from a file or URL, as ``chaos run SOURCE`` loads it (loader controls included)."""
    loaded_settings = copy.deepcopy(dict(settings or {}))
    with _RUN_LOCK:  # chaos run loads the global controls first, so that loader controls apply
        try:
            chaos_control.load_global_controls(loaded_settings)
            experiment = load_experiment(str(source), loaded_settings)
        except (chaos_exceptions.ChaosException, ValueError, OSError, TypeError) as exc:
            raise errors.ExperimentError(f"cannot load experiment {source}: {exc}") from exc
        finally:
            chaos_control.reset_global_controls()
    if not isinstance(experiment, dict):
        raise errors.ExperimentError(f"{source} does not hold an experiment (a mapping)")
    return experiment


def parse_vars(values: Sequence[str]) -> dict[str, Any]:
    """``--var key[:type]=value`` as ``chaos run`` converts them."""
    try:
        return dict(convert_vars(list(values)))
    except ValueError as exc:
        raise errors.ExperimentError(f"invalid --var: {exc}") from exc


def read_var_files(paths: Sequence[str | Path]) -> dict[str, Any]:
    """The configuration values of ``--var-file`` files (JSON/YAML with ``configuration``, or .env), as chaos."""
    try:
        configuration, _secrets = merge_vars({}, [str(p) for p in paths])
    except (chaos_exceptions.ChaosException, ValueError, OSError, TypeError) as exc:
        raise errors.ExperimentError(f"cannot read --var-file: {exc}") from exc
    return dict(configuration or {})


def load_settings_file(path: Path) -> dict[str, Any]:
    """A Chaos Toolkit settings file (``chaos --settings``); a missing file is no settings, as for ``chaos``."""
    try:
        loaded = contextvars.copy_context().run(chaos_settings.load_settings, str(path))
    except OSError as exc:
        raise errors.ExperimentError(f"cannot read settings {path}: {exc}") from exc
    if loaded is not None and not isinstance(loaded, dict):
        raise errors.ExperimentError(f"settings {path} do not hold a mapping")
    return dict(loaded or {})


def _strategies(
    experiment: Mapping[str, Any], settings: dict[str, Any], hypothesis: str | None, rollbacks: str | None
) -> tuple[str, str]:
    """chaos run's precedence: settings, then the experiment's ``runtime``, then the command line."""
    runtime = settings.setdefault("runtime", {})
    runtime.setdefault("rollbacks", {}).setdefault("strategy", "default")
    runtime.setdefault("hypothesis", {}).setdefault("strategy", "default")
    experiment_runtime = experiment.get("runtime")
    if experiment_runtime:
        runtime["rollbacks"]["strategy"] = experiment_runtime.get("rollbacks", {}).get("strategy", "default")
        runtime["hypothesis"]["strategy"] = experiment_runtime.get("hypothesis", {}).get("strategy", "default")
    if hypothesis is not None:
        runtime["hypothesis"]["strategy"] = hypothesis
    if rollbacks is not None:
        runtime["rollbacks"]["strategy"] = rollbacks
    hyp = runtime["hypothesis"]["strategy"]
    hyp = "continuously" if hyp == "continously" else hyp  # chaos run's spelling check (settings keep the typo)
    try:
        Strategy.from_string(hyp)
    except ValueError as exc:
        raise errors.ExperimentError(
            f"unknown hypothesis strategy {hyp!r} ({', '.join(HYPOTHESIS_STRATEGIES)})"
        ) from exc
    # chaos run's command line refuses an unknown rollback strategy; one in the runtime block or the settings
    # reaches chaoslib, which then plays no rollback: the same here
    if rollbacks is not None and rollbacks not in ROLLBACK_STRATEGIES:
        raise errors.ExperimentError(f"unknown rollback strategy {rollbacks!r} ({', '.join(ROLLBACK_STRATEGIES)})")
    rb = str(runtime["rollbacks"]["strategy"])
    return hyp, rb


def run_experiment_with_phases(
    experiment: Mapping[str, Any],
    *,
    phases: Phases,
    extra_vars: Mapping[str, Any] | None = None,
    var_files: Sequence[str | Path] = (),
    settings: Mapping[str, Any] | None = None,
    hypothesis_strategy: str | None = None,
    rollback_strategy: str | None = None,
    dry: str | None = None,
    log_path: Path | None = None,
    validate: bool = True,
    hypothesis_frequency: float = 1.0,
    fail_fast: bool = False,
    install_signal_handlers: bool = False,
) -> CtkOutcome:
    """Run ``experiment`` as ``chaos run`` would, calling ``phases`` around the method.

    ``extra_vars`` are ``--var`` (already converted: :func:`parse_vars`), ``var_files`` ``--var-file``,
    ``settings`` the parsed settings file (``None``: no settings file), the strategies ``None`` when not
    given on the command line, ``dry`` one of ``probes|actions|activities|pause``. ``validate=False`` is
    ``--no-validation``. ``install_signal_handlers`` lets chaoslib install its SIGTERM/SIGUSR1/SIGUSR2
    handlers as ``chaos run`` does (main thread only; drill keeps its own). The experiment is not modified.
    Last, whatever happened, ``phases.finished()`` is called when the phases have such a method.
    """
    try:
        to_run = copy.deepcopy(dict(experiment))
        run_settings: dict[str, Any] = copy.deepcopy(dict(settings or {}))
        if validate:
            chaostoolkit.validate_experiment(to_run)
        hyp, rb = _strategies(to_run, run_settings, hypothesis_strategy, rollback_strategy)
        try:
            to_run["dry"] = Dry.from_string(dry) if dry else None
        except ValueError as exc:
            raise errors.ExperimentError(f"unknown dry mode {dry!r} (probes, actions, activities, pause)") from exc
        if not _RUN_LOCK.acquire(blocking=False):
            raise errors.ExperimentError("another Chaos Toolkit experiment is running in this process")
        try:
            return contextvars.copy_context().run(
                lambda: _run_locked(
                    to_run,
                    phases=phases,
                    extra_vars=dict(extra_vars or {}),
                    var_files=[str(p) for p in var_files],
                    settings=run_settings,
                    strategy=Strategy.from_string(hyp),
                    rollback_strategy=rb,
                    schedule=Schedule(continuous_hypothesis_frequency=hypothesis_frequency, fail_fast=fail_fast),
                    dry=dry,
                    log_path=log_path,
                    install_signal_handlers=install_signal_handlers,
                )
            )
        finally:
            _RUN_LOCK.release()
    finally:
        finished = getattr(phases, "finished", None)  # optional: the phases' owner may wait on the run's end
        if callable(finished):
            finished()


def _run_locked(
    experiment: dict[str, Any],
    *,
    phases: Phases,
    extra_vars: dict[str, Any],
    var_files: list[str],
    settings: dict[str, Any],
    strategy: Strategy,
    rollback_strategy: str,
    schedule: Schedule,
    dry: str | None,
    log_path: Path | None,
    install_signal_handlers: bool,
) -> CtkOutcome:
    handler = chaostoolkit.attach_log(log_path)
    driver = Driver(phases)
    token = uuid.uuid4().hex
    DRIVERS[token] = driver
    own_control = control_entry(token)
    had_controls = "controls" in experiment
    original_controls = experiment.get("controls")
    try:
        chaos_settings.loaded_settings.set(settings)  # what ``chaos --settings`` leaves for the controls
        try:
            experiment_vars = merge_vars(extra_vars, var_files)
            chaos_control.load_global_controls(settings)
        except (chaos_exceptions.ChaosException, ValueError, OSError, TypeError) as exc:
            raise errors.ExperimentError(f"cannot load variables or global controls: {exc}") from exc
        if original_controls:
            experiment["controls"] = [*original_controls, own_control]
        else:
            chaos_control.set_global_controls([*chaos_control.get_global_controls(), own_control])
        events = Events(driver)
        try:
            if install_signal_handlers:  # exactly chaos run's call
                journal = run_experiment(
                    experiment,
                    settings=settings,
                    experiment_vars=experiment_vars,
                    strategy=strategy,
                    schedule=schedule,
                    event_handlers=[events],
                )
            else:
                journal = _run_without_signals(
                    experiment,
                    settings=settings,
                    experiment_vars=experiment_vars,
                    strategy=strategy,
                    schedule=schedule,
                    events=events,
                )
        except chaos_exceptions.ChaosException as exc:
            raise errors.ExperimentError(f"Chaos Toolkit could not run the experiment: {exc}") from exc
        except (TypeError, KeyError, AttributeError, ValueError) as exc:
            raise errors.ExperimentError(
                f"Chaos Toolkit could not run the experiment ({type(exc).__name__}: {exc})"
            ) from exc
    finally:
        chaos_control.reset_global_controls()
        DRIVERS.pop(token, None)
        chaostoolkit.detach_log(handler)
    journaled = journal.get("experiment")
    if isinstance(journaled, dict):  # the journal shows the experiment as given, as chaos run's does
        if had_controls:
            journaled["controls"] = original_controls
        else:
            journaled.pop("controls", None)
        if "dry" in journaled:
            journaled["dry"] = dry
    status = str(journal.get("status"))
    if status == "interrupted" and not driver.by_phase:
        driver.interrupted()  # e.g. an interruption during the rollbacks, which chaoslib reports to no handler
    outcome = CtkOutcome(
        journal=journal,
        status=status,
        deviated=bool(journal.get("deviated")),
        method_ran=driver.before_done,
        interrupted_by_phase=driver.by_phase,
        phase_calls=tuple(driver.calls),
        rollback_strategy=rollback_strategy,
    )
    if driver.error is not None:
        raise PhaseError(f"a drill phase failed: {driver.error}", outcome) from driver.error
    return outcome


def _run_without_signals(
    experiment: dict[str, Any],
    *,
    settings: dict[str, Any],
    experiment_vars: Any,
    strategy: Strategy,
    schedule: Schedule,
    events: Events,
) -> dict[str, Any]:
    """``chaoslib.experiment.run_experiment`` (its ``with_cache`` and ``Runner.run``) minus ``exit_signals``.

    chaoslib installs SIGTERM/SIGUSR1/SIGUSR2 handlers for the run, which only the main thread may do and
    which would replace drill's own; everything else is the same calls in the same order.
    """
    caching.cache_activities(experiment)  # what @with_cache does: refs resolve through this cache
    try:
        with Runner(strategy, schedule) as runner:
            runner.register_event_handler(events)
            runner.configure(experiment, settings, experiment_vars)
            journal: dict[str, Any] = runner._run(
                strategy,
                schedule,
                experiment,
                None,
                runner.config,
                runner.secrets,
                runner.settings,
                runner.event_registry,
            )
            return journal
    finally:
        caching.clear_cache()


def journal_json(outcome: CtkOutcome) -> str:
    """The journal exactly as ``chaos run`` serialises it to journal.json (its own encoder)."""
    encoder = importlib.import_module("chaostoolkit").encoder  # the CLI package is untyped
    return json.dumps(outcome.journal, indent=2, ensure_ascii=False, default=encoder)
