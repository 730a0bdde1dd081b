"""``drill restore``: put suspended automation back, from the journal and from markers."""

from __future__ import annotations

import argparse
import sys

from orchestrator import errors, records
from orchestrator.cli import context
from orchestrator.clock import SystemClock, iso
from orchestrator.journal import sqlite
from orchestrator.reporting import reports
from orchestrator.restore import recovery, restoring
from orchestrator.targets import registry


def _finish(
    args: argparse.Namespace, journal: sqlite.SqliteJournal, run: records.RunRecord, reason: str
) -> restoring.RestoreReport:
    clock = SystemClock()
    report = recovery.finish_orphaned_run(journal, run, clock=clock, actor="drill restore", reason=reason)
    if run.state.active:
        archive = context.paths(args).archive
        folder = reports.folder_for(archive, run.run_id)
        outcome = run.outcome or recovery.outcome_from_timeline(journal, run)
        journal.finish(run.run_id, outcome=outcome, report_dir=str(folder), at=clock.now())
        reports.write_run_report(journal, run.run_id, archive, now=clock.now())
        journal.set_state(
            run.run_id, records.RunState.DONE, actor="drill restore", trigger=outcome.value, at=clock.now()
        )
        print(f"report: {folder / 'report.md'}")
    return report


def _print(run_id: str, report: restoring.RestoreReport) -> None:
    for label in report.restored:
        print(f"restored and verified: {label} (run {run_id})")
    for label in report.failed:
        print(f"NOT RESTORED: {label} (run {run_id}); see `drill journal {run_id}`", file=sys.stderr)


def restore(args: argparse.Namespace) -> int:
    if not args.run and not args.expired:
        raise errors.DrillError("name a RUN to restore, or pass --expired (see `drill restore --help`)")
    journal = context.journal(args)
    ok = True
    if args.run:
        run = journal.resolve_run(args.run)
        if run.state.active and restoring.process_alive(run) and not args.force:
            raise errors.DrillError(
                f"run {run.run_id} is still running (pid {run.pid}); it restores by itself when it ends. "
                f"`drill abort {run.run_id} --as NAME` ends it now; --force restores anyway"
            )
        report = _finish(args, journal, run, "restored by `drill restore` (the run's process had stopped)")
        _print(run.run_id, report)
        ok = report.ok
        if not report.restored and not report.failed:
            print(f"run {run.run_id}: nothing left to restore")
    if args.expired:
        now = SystemClock().now()
        expired = restoring.expired_suspensions(journal, now=now)
        for run_id in sorted({s.run_id for s in expired}):
            run = journal.get_run(run_id)
            deadline = min(s.deadline_at for s in expired if s.run_id == run_id)
            report = _finish(args, journal, run, f"deadline passed ({iso(deadline)})")
            _print(run_id, report)
            ok = ok and report.ok
        runs = journal.list_runs(limit=100000)
        known = {r.run_id for r in runs}
        keys = {r.target_key for r in runs}
        keys.add(f"sandbox:{context.paths(args).sandbox_home.resolve()}")
        for key in sorted(keys):
            try:
                target = registry.from_key(key)
                if target.check_reachable() is not None:
                    continue
                for label in restoring.restore_expired_markers(target, now=now, known_runs=known):
                    print(f"restored and verified from its marker: {label}")
            except errors.DrillError as exc:
                print(f"drill: could not check {key}: {exc}", file=sys.stderr)
        if not expired:
            print("no suspension in the journal is past its deadline")
    return 0 if ok else 5
