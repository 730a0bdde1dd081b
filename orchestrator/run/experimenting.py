"""What chaoslib's run of the experiment left behind, collected once the automation is back.

The engine waits (bounded) for chaoslib to finish its hypothesis after the method and its
rollbacks, then journals the experiment's status, the rollbacks it played (as the experiment's
rollback strategy says) and keeps the Chaos Toolkit journal, redacted, for the archive.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from typing import Any

from orchestrator import errors, records, redaction
from orchestrator.adapters import ctkrun
from orchestrator.clock import Clock
from orchestrator.restore import restoring
from orchestrator.run import interrupting


@dataclass
class Collected:
    ctk_journal: str | None = None
    """The Chaos Toolkit journal, as ``chaos run`` writes it, redacted."""
    rolled_back: bool = False
    """chaoslib played its rollbacks (or decided, by its strategy, to play none)."""
    abort_reason: str | None = None
    """Why the run ends aborted, when chaoslib failed or stopped before the fault."""


def activity_name(run: dict[str, Any]) -> str:
    activity = run.get("activity")
    return str(activity.get("name", "?")) if isinstance(activity, dict) else "?"


def summary(runs: list[dict[str, Any]]) -> str:
    """``name: status; ...`` of a part of a Chaos Toolkit journal (the method, the rollbacks)."""
    return "; ".join(f"{activity_name(r)}: {r.get('status', '?')}" for r in runs) or "no activities"


def failure(exc: BaseException) -> BaseException:
    """What really went wrong in the experiment's worker (a drill phase's own error, not its wrapper)."""
    return exc.__cause__ if isinstance(exc, ctkrun.PhaseError) and exc.__cause__ is not None else exc


def why_no_method(experiment: interrupting.Pending[ctkrun.CtkOutcome]) -> str:
    """Why chaoslib ended before the method, in words for a failed preflight."""
    try:
        outcome = experiment.result()
    except Exception as exc:
        cause = failure(exc)
        return f"Chaos Toolkit could not run it: {redaction.clean(str(cause)) or type(cause).__name__}"
    return (
        f"Chaos Toolkit stopped before the method (status {outcome.status}): the steady state did not hold "
        "or a control (e.g. a safeguard) refused to go on"
    )


def collect(
    experiment: interrupting.Pending[ctkrun.CtkOutcome] | None,
    writer: restoring.TolerantJournal,
    *,
    run_id: str,
    clock: Clock,
    grace_s: float,
    injected: bool,
) -> Collected:
    """Wait at most ``grace_s`` for chaoslib, then journal what it did."""
    collected = Collected()
    if experiment is None:
        return collected

    def note(expected: str, actual: str, **data: Any) -> None:
        writer.append(
            records.action(
                run_id,
                clock.now(),
                "experiment",
                actor="drill",
                trigger="restoring",
                expected=expected,
                actual=actual,
                **data,
            )
        )

    if not experiment.join(grace_s):
        note(
            "Chaos Toolkit finished the experiment",
            f"still running after {grace_s:g}s: drill plays the rollbacks",
            ok=False,
        )
        return collected
    try:
        outcome = experiment.result()
    except Exception as exc:  # chaoslib refused or failed the experiment: say why; drill rolls back
        cause = failure(exc)
        if isinstance(cause, errors.OwnershipLostError):
            raise cause from None
        reason = redaction.clean(str(cause)) or type(cause).__name__
        note("Chaos Toolkit ran the experiment", f"FAILED: {reason}", ok=False)
        if not injected:
            collected.abort_reason = f"error: {reason}"
        return collected
    with contextlib.suppress(Exception):
        journal = dict(outcome.journal)
        if isinstance(journal.get("experiment"), dict):
            journal["experiment"] = redaction.redact_experiment(journal["experiment"])
        collected.ctk_journal = ctkrun.journal_json(
            dataclasses.replace(outcome, journal=redaction.clean_value(journal))
        )
    note(
        "Chaos Toolkit ran the experiment",
        f"status {outcome.status}" + (", deviated" if outcome.deviated else ""),
        ok=outcome.status == "completed",
        status=outcome.status,
        deviated=outcome.deviated,
    )
    if not injected:
        if not outcome.method_ran:
            collected.abort_reason = (
                f"Chaos Toolkit ended the experiment before its method ({outcome.status}): no fault was injected"
            )
        return collected
    rollbacks = [r for r in outcome.journal.get("rollbacks") or [] if isinstance(r, dict)]
    ok = all(r.get("status") == "succeeded" for r in rollbacks)
    actual = summary(rollbacks)
    experiment = outcome.journal.get("experiment")
    declared = experiment.get("rollbacks") if isinstance(experiment, dict) else None
    if not rollbacks and declared:
        # chaoslib's strategy skipped them (``default`` after a deviation or an interruption, ``never``,
        # ``deviated`` without one): chaos run does the same, and the fault may still be in place
        ok = False
        actual = (
            f"none of the experiment's {len(declared)} rollback(s) played: Chaos Toolkit's rollback strategy "
            f"{outcome.rollback_strategy!r} skips them when the run ends {outcome.status}"
            + (" (deviated)" if outcome.deviated else "")
            + "; the fault may still be in place: undo it by hand, or run with --rollback-strategy always"
        )
    now = clock.now()
    writer.append(
        records.action(
            run_id,
            now,
            "rollback",
            actor="drill",
            trigger="restoring",
            expected="fault rolled back (the experiment's rollback strategy)",
            actual=actual,
            ok=ok,
        )
    )
    collected.rolled_back = True  # chaoslib played its rollbacks as its strategy says; drill adds none
    # (no "rolled back" on the timeline when none was played: resolve stays censored, the fault was not undone)
    if ok:
        writer.append(records.timeline(run_id, now, records.TimelineKind.ROLLED_BACK, actor="drill"))
    return collected
