"""Finishing a run, once, the same way whoever finishes it: the engine at the end of a run, or
``drill restore`` / ``drill abort`` after the run's process died.

Called only after every policy has been restored: nothing here can stand between a suspended
policy and its restore. The outcome is derived from the journal (``orchestrator.outcomes``); the
report is written into the archive; a report that cannot be written (an unwritable archive, a
full disk) is said clearly and the run still ends ``done``, with the journal consistent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator import outcomes, records, redaction
from orchestrator.archive import indexing, storing
from orchestrator.clock import Clock
from orchestrator.journal import base as journal_base
from orchestrator.restore import restoring

S = records.RunState


@dataclass
class Finished:
    outcome: records.Outcome | None = None
    report_dir: Path | None = None
    problems: list[str] = field(default_factory=list)
    """Journal writes that failed; the automation is restored regardless."""
    report_problem: str | None = None
    """Why the report could not be written (an unwritable archive), if it could not."""
    index_problem: str | None = None
    """Why the archive's index was not updated; the run is archived, ``drill report rebuild`` mends it."""


def finish_run(
    journal: journal_base.JournalStore,
    run_id: str,
    *,
    token: int | None,
    clock: Clock,
    archive: Path,
    actor: str,
    trigger: str,
    extra_files: Mapping[str, str] | None = None,
) -> Finished:
    """Derive the outcome, record it, archive the run (with ``extra_files``), end it ``done``, free its target."""
    done = Finished()
    writer = restoring.TolerantJournal(journal, token=token, errors_out=done.problems)
    try:
        run = journal.get_run(run_id)
        done.outcome = outcomes.derive(run.mode, journal.events(run_id))
    except Exception as exc:  # the journal is gone: nothing to report from
        done.problems.append(f"cannot read the run back from the journal: {redaction.redact(str(exc))}")
        return done
    folder = archive / run_id
    outcome = done.outcome
    if run.state is not S.REPORTING:
        writer.attempt(
            "journal reporting",
            lambda: journal.set_state(run_id, S.REPORTING, actor=actor, trigger=trigger, at=clock.now(), token=token),
        )
    writer.attempt(
        "journal outcome",
        lambda: journal.finish(run_id, outcome=outcome, report_dir=str(folder), at=clock.now(), token=token),
    )
    # Done before the report is written, so the archived journal.jsonl holds the whole run.
    writer.attempt(
        "journal done",
        lambda: journal.set_state(run_id, S.DONE, actor=actor, trigger=outcome.value, at=clock.now(), token=token),
    )
    try:
        done.report_dir = storing.archive_run(journal, run_id, archive, now=clock.now(), extra_files=extra_files)
    except Exception as exc:  # an unwritable archive must not leave the run unfinished
        detail = redaction.redact(str(exc)) or type(exc).__name__
        done.report_problem = f"report not written to {folder}: {detail}"
        writer.append(
            records.action(
                run_id,
                clock.now(),
                "report",
                actor=actor,
                trigger=trigger,
                expected=f"run archived in {folder}",
                actual=f"FAILED: {detail}",
                ok=False,
            )
        )
        writer.attempt(
            "journal outcome",
            lambda: journal.finish(run_id, outcome=outcome, report_dir=None, at=clock.now(), token=token),
        )
    writer.attempt("free the target", lambda: journal.unlock_target(run.target_key, run_id=run_id))
    if done.report_dir is not None:
        done.index_problem = _index(archive, done.report_dir)
    return done


def _index(archive: Path, folder: Path) -> str | None:
    """Add the archived run to the archive's index; the index is rebuilt from the files at will."""
    try:
        index = indexing.open_index(archive)
        try:
            indexing.index_run(index, folder)
        finally:
            index.close()
    except Exception as exc:
        detail = redaction.redact(str(exc)) or type(exc).__name__
        return f"the archive index was not updated ({detail}); `drill report rebuild` rebuilds it from the files"
    return None
