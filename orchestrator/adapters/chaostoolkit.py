"""Chaos Toolkit through chaostoolkit-lib: load, validate, and run an experiment as separate steps.

A drill waits for humans between the method (the fault) and the rollbacks, so instead of
``run_experiment`` this drives the steady-state hypothesis, the method and the rollbacks one
at a time. Chaos Toolkit's own log goes to a file per run, never to the drill's console.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaoslib import exceptions as chaos_exceptions
from chaoslib.activity import ensure_activity_is_valid, execute_activity
from chaoslib.configuration import load_configuration
from chaoslib.experiment import ensure_experiment_is_valid
from chaoslib.hypothesis import run_steady_state_hypothesis, within_tolerance
from chaoslib.rollback import run_rollbacks
from chaoslib.secret import load_secrets

from orchestrator import errors, redaction

_LOGGER_NAME = "chaostoolkit"


def _quiet() -> logging.Logger:
    """Keep Chaos Toolkit's logger off the console unless a run attaches a file."""
    logger = logging.getLogger(_LOGGER_NAME)
    logger.propagate = False
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
    return logger


def attach_log(log_path: Path | None) -> logging.Handler | None:
    """Send Chaos Toolkit's log to ``log_path`` (redacted: activity arguments may hold secrets)."""
    logger = _quiet()
    if log_path is None:
        return None
    log_path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    handler.addFilter(redaction.CleaningFilter())
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    return handler


def detach_log(handler: logging.Handler | None) -> None:
    if handler is not None:
        logging.getLogger(_LOGGER_NAME).removeHandler(handler)
        handler.close()


def validate_experiment(experiment: Mapping[str, Any]) -> None:
    """Chaos Toolkit's own validation, exactly what ``chaos validate`` does.

    Whatever makes ``chaos validate`` fail makes this raise ``ExperimentError``: its own verdicts, a structure
    it stumbles on (``chaos validate`` ends in a traceback) and a provider or control module that fails to
    import (chaoslib imports them while validating; importing runs the module's code, which may raise anything).
    """
    _quiet()
    try:
        ensure_experiment_is_valid(dict(experiment))
    except chaos_exceptions.ChaosException as exc:
        raise errors.ExperimentError(f"invalid experiment: {exc}") from exc
    except (TypeError, KeyError, AttributeError, ValueError) as exc:
        raise errors.ExperimentError(f"invalid experiment: malformed structure ({exc})") from exc
    except Exception as exc:
        raise errors.ExperimentError(f"invalid experiment: {type(exc).__name__}: {exc}") from exc


def validate_activity(activity: Mapping[str, Any]) -> None:
    _quiet()
    try:
        ensure_activity_is_valid(dict(activity))
    except chaos_exceptions.ChaosException as exc:
        raise errors.ExperimentError(f"invalid probe: {exc}") from exc
    except (TypeError, KeyError, AttributeError, ValueError) as exc:
        raise errors.ExperimentError(f"invalid probe: malformed structure ({exc})") from exc
    except Exception as exc:
        raise errors.ExperimentError(f"invalid probe: {type(exc).__name__}: {exc}") from exc


@dataclass(frozen=True)
class ActivityOutcome:
    """One activity as Chaos Toolkit ran it."""

    name: str
    status: str
    duration_s: float
    output: str
    error: str | None = None


@dataclass(frozen=True)
class StepResult:
    """A whole step (hypothesis, method or rollbacks)."""

    ok: bool
    activities: list[ActivityOutcome] = field(default_factory=list)

    @property
    def summary(self) -> str:
        parts = [f"{a.name}: {a.status}" + (f" ({a.error})" if a.error else "") for a in self.activities]
        return "; ".join(parts) or "no activities"


_API_MESSAGE = re.compile(r'"message":\s*"((?:[^"\\]|\\.)*)"')


def _short_error(text: str, limit: int = 240) -> str:
    """The last line of an activity's exception; an API server's refusal (a Kubernetes ``Status`` body) by its
    message, which names the verb, the resource and the user ("cannot watch resource "deployments" ...")."""
    error = text.strip().splitlines()[-1].removeprefix("chaoslib.exceptions.ActivityFailed: ")
    found = _API_MESSAGE.search(error)
    if found:
        with contextlib.suppress(ValueError):
            error = str(json.loads(f'"{found.group(1)}"'))
    return error if len(error) <= limit else error[: limit - 3] + "..."


def _outcome(run: Mapping[str, Any]) -> ActivityOutcome:
    exception = run.get("exception")
    error = None
    if exception:
        error = _short_error("".join(exception))
    output = repr(run.get("output"))
    return ActivityOutcome(
        name=str(run.get("activity", {}).get("name", "?")),
        status=str(run.get("status", "?")),
        duration_s=float(run.get("duration") or 0.0),
        output=output if len(output) <= 200 else output[:197] + "...",
        error=error,
    )


class ExperimentSession:
    """One experiment's configuration and secrets, loaded once, for running its parts separately."""

    def __init__(
        self, experiment: Mapping[str, Any], *, extra_vars: Mapping[str, Any], log_path: Path | None = None
    ) -> None:
        self._experiment = dict(experiment)
        self._handler = attach_log(log_path)
        try:
            self._configuration = load_configuration(self._experiment.get("configuration") or {}, dict(extra_vars))
            self._secrets = load_secrets(self._experiment.get("secrets") or {}, self._configuration)
        except chaos_exceptions.ChaosException as exc:
            raise errors.ExperimentError(f"cannot load configuration or secrets: {exc}") from exc
        self._pool = ThreadPoolExecutor(max_workers=2)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        detach_log(self._handler)

    def _collect(self, runs: Iterable[Any]) -> StepResult:
        outcomes: list[ActivityOutcome] = []
        for item in runs:
            run = item.result() if isinstance(item, Future) else item
            if run:
                outcomes.append(_outcome(run))
        return StepResult(ok=all(o.status == "succeeded" for o in outcomes), activities=outcomes)

    def steady_state(self) -> StepResult:
        """Run the steady-state hypothesis once; ``ok`` means every probe was within tolerance."""
        try:
            state = run_steady_state_hypothesis(self._experiment, self._configuration, self._secrets, None, None)
        except chaos_exceptions.ChaosException as exc:
            return StepResult(ok=False, activities=[ActivityOutcome("hypothesis", "failed", 0.0, "", str(exc))])
        if state is None:
            return StepResult(ok=True)
        outcomes = [_outcome(r) for r in state.get("probes", [])]
        return StepResult(ok=bool(state.get("steady_state_met")), activities=outcomes)

    def run_rollbacks(self) -> StepResult:
        """Run the rollbacks (undo the fault)."""
        try:
            runs = run_rollbacks(self._experiment, self._configuration, self._secrets, self._pool, None)
            return self._collect(runs)
        except chaos_exceptions.ChaosException as exc:
            raise errors.ExperimentError(f"rollbacks failed: {exc}") from exc

    def check_probe(self, activity: Mapping[str, Any]) -> StepResult:
        """Run one probe and compare it with its tolerance (guardrails)."""
        run = execute_activity(self._experiment, dict(activity), self._configuration, self._secrets, None)
        outcome = _outcome(run)
        if run.get("status") != "succeeded":
            return StepResult(ok=False, activities=[outcome])
        met = within_tolerance(
            activity.get("tolerance"),
            run.get("output"),
            configuration=self._configuration,
            secrets=self._secrets,
        )
        return StepResult(ok=bool(met), activities=[outcome])
