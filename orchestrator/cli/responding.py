"""Responder commands (ack, diagnosed, mitigated, resolve, abort, note, hint) and run inspection.

Commands are appended to the journal, which the running drill reads every fifth of a second;
the time recorded is the moment the command was typed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from orchestrator import durations, errors, records, redaction, settings
from orchestrator.cli import context
from orchestrator.clock import iso
from orchestrator.definitions import models
from orchestrator.restore import recovery

_NAMES = {
    "ack": records.Command.ACK,
    "diagnosed": records.Command.DIAGNOSED,
    "mitigated": records.Command.MITIGATED,
    "resolve": records.Command.RESOLVE,
    "abort": records.Command.ABORT,
    "note": records.Command.NOTE,
    "hint": records.Command.HINT,
}


def command(args: argparse.Namespace) -> int:
    name = _NAMES[args.command_name]
    journal = context.journal(args)
    run = journal.resolve_run(args.run)
    if not run.state.active:
        raise errors.ResponseError(f"run {run.run_id} is {run.state.value}; commands go to runs in progress")
    drill = models.Drill.model_validate(run.definition)
    if drill.participant(args.actor) is None:
        names = ", ".join(p.name for p in drill.spec.participants) or "none"
        raise errors.ResponseError(
            f"{args.actor!r} is not a participant of {drill.metadata.name} (participants: {names})"
        )
    if name is not records.Command.ABORT and run.state is not records.RunState.RESPONDING:
        raise errors.ResponseError(
            f"run {run.run_id} is {run.state.value}; {args.command_name} is taken while it is responding"
        )
    live = recovery.liveness(run, now=time.time(), lease_s=settings.Timing().lease_s)
    if (
        name is records.Command.ABORT
        and live.alive
        and run.state
        in (
            records.RunState.RESTORING,
            records.RunState.REPORTING,
        )
    ):
        print(f"run {run.run_id} is already {run.state.value}")
        return 0
    at = time.time()
    journal.append(
        records.Event(
            run_id=run.run_id,
            at=at,
            kind=records.EventKind.COMMAND,
            name=name.value,
            actor=args.actor,
            trigger="drill " + args.command_name,
            data=_message(name, args.message),
        )
    )
    print(f"{args.command_name} recorded for run {run.run_id} as {args.actor} at {iso(at)}")
    if name is records.Command.ABORT and not live.alive:
        # Nobody is running it any more (crashed, killed, its host gone): the abort restores here and now.
        from orchestrator.cli import restoring as restore_cli

        print(f"its process is not running ({live.detail}): restoring its automation now")
        return restore_cli.restore_run(args, journal, run, f"aborted by {args.actor}; the run's process was gone")
    # A live run notices the abort in the journal within a second, in any phase, on any machine.
    return 0


def _message(name: records.Command, message: str | None) -> dict[str, str]:
    """The event data for ``-m``: cleaned (a pasted token or escape code is not recorded); a note needs text."""
    text = redaction.clean((message or "").strip())
    if name is records.Command.NOTE and not text:
        raise errors.ResponseError('a note needs text: drill note RUN --as NAME -m "what you saw"')
    return {"text": text} if text else {}


def _out(text: str) -> None:
    """Print one line of run data: secrets redacted, control characters and newlines made visible."""
    print(redaction.clean_line(text))


def status(args: argparse.Namespace) -> int:
    from orchestrator.reporting import reports

    journal = context.journal(args, read_only=True)
    run = journal.resolve_run(args.run)
    report = reports.build(journal, run.run_id, now=time.time())
    if args.json:
        print(json.dumps(redaction.clean_value(report.model_dump(mode="json")), indent=2))  # escapes what is left
        return 0
    _out(f"run {run.run_id}: {run.state.value}" + (f", outcome {run.outcome.value}" if run.outcome else ""))
    _out(f"drill {run.drill_name} ({run.mode}) on {run.target_key}, started {iso(run.created_at)}")
    live = recovery.liveness(run, now=time.time(), lease_s=settings.Timing().lease_s)
    if run.state.active and not live.alive:
        print(f"! {live.detail}: `drill restore {run.run_id}` restores its automation")
    for p in report.policies:
        _out(f"policy {p.name}: {p.state} ({p.detail})")
    for t in report.timings:
        shown = durations.format_duration(t.seconds) if t.seconds is not None else "-"
        _out(f"  {t.name:<12} {shown}")
    for e in report.timeline:
        _out(f"  {e.at}  {e.event:<22} {e.actor:<22} {e.detail}".rstrip())
    if run.report_dir:
        _out(f"report: {run.report_dir}")
    return 0


def runs(args: argparse.Namespace) -> int:
    try:
        journal = context.journal(args, read_only=True)
    except errors.JournalUnavailableError as exc:
        if "no journal at" not in str(exc):
            raise
        print(f"no runs yet ({exc})")
        return 0
    found = journal.list_runs(limit=args.limit)
    if not found:
        print(f"no runs yet (journal {journal.url})")
        return 0
    for run in found:
        outcome = run.outcome.value if run.outcome else "-"
        _out(f"{run.run_id:<52} {run.state.value:<11} {outcome:<14} {iso(run.created_at)}")
    return 0


def journal(args: argparse.Namespace) -> int:
    store = context.journal(args, read_only=True)
    run = store.resolve_run(args.run)
    for event in store.events(run.run_id):
        # json.dumps escapes every control and non-ASCII character (\u001b, \u202e); cleaning also
        # redacts what a journal written before events were cleaned may hold.
        sys.stdout.write(json.dumps(redaction.clean_value(event.to_json()), sort_keys=True) + "\n")
    return 0
