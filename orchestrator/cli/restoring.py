"""``drill restore``: put suspended automation back, from the journal, or from the markers alone.

With a journal: the run is taken over by compare-and-set on its ownership record (one of two
concurrent restores wins, a live run is refused before its deadline), every policy is restored
and verified, the fault rolled back, the run finished and its report written.

Without one (deleted, truncated, unreadable, or ``--from-markers``): the markers on the target
say which run suspended what and the original value; a named run is restored from them at once.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from orchestrator import errors, records, redaction, settings
from orchestrator.cli import context
from orchestrator.clock import SystemClock, iso
from orchestrator.journal import base as journal_base
from orchestrator.restore import markers, recovery, restoring
from orchestrator.run import finishing
from orchestrator.targets import base as target_base
from orchestrator.targets import registry

ACTOR = recovery.RESTORER


def _print(run_id: str, report: restoring.RestoreReport) -> None:
    for label in report.restored:
        print(f"restored and verified: {label} (run {run_id})")
    for label in report.not_claimed:
        print(f"nothing to restore: {label} was never changed (run {run_id})")
    for label in report.gone:
        print(f"gone: {label} (run {run_id}); nothing left to restore there", file=sys.stderr)
    for label in report.failed:
        print(f"NOT RESTORED: {label} (run {run_id}); see `drill journal {run_id}`", file=sys.stderr)
    for problem in report.journal_errors:
        print(f"drill: restored, but the journal could not record: {problem}", file=sys.stderr)
    if report.rollback_problem:
        print(
            f"drill: the fault was NOT rolled back ({report.rollback_problem}); `drill journal {run_id}` shows "
            "why: undo it by hand",
            file=sys.stderr,
        )


def _code(*reports: restoring.RestoreReport, problems: list[str] | None = None) -> int:
    if any(not r.ok for r in reports):
        return 5
    if any(r.rollback_problem for r in reports):
        return 3
    if problems or any(not r.journaled for r in reports):
        return 6
    return 0


def restore_run(
    args: argparse.Namespace, journal: journal_base.JournalStore, run: records.RunRecord, reason: str
) -> int:
    clock = SystemClock()
    leftovers = journal.suspensions(run.run_id, unrestored=True)
    if not run.state.active and not leftovers:
        print(f"run {run.run_id} is {run.state.value}: nothing to restore")
        return 0
    try:
        token = recovery.take_over(journal, run, clock=clock, actor=ACTOR)
    except errors.OwnershipLostError as exc:
        raise errors.DrillError(
            f"another process took run {run.run_id} over first ({exc}); it restores the run: "
            f"`drill status {run.run_id}` shows how it ends"
        ) from None
    report = recovery.finish_orphaned_run(
        journal, run, token=token, clock=clock, actor=ACTOR, reason=reason, force=getattr(args, "force", False)
    )
    _print(run.run_id, report)
    problems: list[str] = []
    if run.state.active:
        finished = finishing.finish_run(
            journal,
            run.run_id,
            token=token,
            clock=clock,
            archive=context.paths(args).archive,
            actor=ACTOR,
            trigger=reason,
        )
        problems = list(finished.problems)
        if finished.report_problem is not None:
            problems.append(finished.report_problem)
        for problem in problems:
            print(f"drill: {problem}", file=sys.stderr)
        if finished.index_problem is not None:
            print(f"drill: note: {finished.index_problem}", file=sys.stderr)
        if finished.report_dir is not None:
            print(f"report: {finished.report_dir / 'report.md'}")
    if report.ok:
        registry.release_lock(run.target_key, run.definition, run_id=run.run_id)
    if not report.restored and not report.failed and not report.not_claimed:
        print(f"run {run.run_id}: nothing left to restore")
    return _code(report, problems=problems)


def _targets(args: argparse.Namespace, journal: journal_base.JournalStore | None) -> list[target_base.Target]:
    """Where to look for markers: --target, the drill file's target, the runs' targets, this home's sandbox."""
    keys: list[str] = []
    if args.marker_target:
        keys.append(args.marker_target)
    if args.in_cluster:
        keys.append("kubernetes:in-cluster")
    elif args.kubeconfig or args.context:
        from orchestrator.targets import kubernetes

        keys.append(kubernetes.KubernetesTarget.from_flags(kubeconfig=args.kubeconfig, context=args.context).key)
    if args.drill:
        from orchestrator.definitions import loading

        spec = loading.parse_drill(Path(args.drill))[0].spec
        target = registry.from_spec(
            spec.target, default_sandbox_home=context.paths(args).sandbox_home, context=args.context
        )
        keys.append(target.key)
    if not keys:
        if journal is not None:
            keys.extend(r.target_key for r in journal.list_runs(limit=100_000))
        keys.append(f"sandbox:{context.paths(args).sandbox_home.resolve()}")
    targets: list[target_base.Target] = []
    for key in dict.fromkeys(keys):
        try:
            target = registry.from_key(key)
        except errors.DrillError as exc:
            print(f"drill: cannot use target {key}: {exc}", file=sys.stderr)
            continue
        problem = target.check_reachable()
        if problem is None:
            targets.append(target)
        elif args.marker_target or args.drill or args.kubeconfig or args.context or args.in_cluster:
            print(f"drill: {problem}", file=sys.stderr)
    return targets


def _from_markers(args: argparse.Namespace, journal: journal_base.JournalStore | None, *, run_id: str | None) -> int:
    now = SystemClock().now()
    code = 0
    found = False
    for target in _targets(args, journal):
        report = markers.restore_from_markers(
            target, run_id=run_id, now=now, expired_only=run_id is None, force=getattr(args, "force", False)
        )
        for line in report.restored:
            found = True
            print(f"restored and verified from its marker: {line}")
        for line in report.failed:
            found = True
            code = 5
            print(f"NOT RESTORED from its marker: {line}", file=sys.stderr)
        for line in report.skipped:
            print(f"left alone: {line}")
    if not found:
        which = f"of run {run_id} " if run_id else "past its deadline "
        print(f"no marker {which}on {', '.join(t.key for t in _targets(args, journal)) or 'any reachable target'}")
    return code


def restore(args: argparse.Namespace) -> int:
    if not args.run and not args.expired:
        raise errors.DrillError("name a RUN to restore, or pass --expired (see `drill restore --help`)")
    journal: journal_base.JournalStore | None = None
    if not args.from_markers:
        try:
            journal = context.journal(args)
        except errors.JournalError as exc:
            print(
                f"drill: the journal cannot be used ({redaction.clean(str(exc))}); restoring from the markers "
                "on the target instead",
                file=sys.stderr,
            )
    if journal is None:
        return _from_markers(args, None, run_id=args.run)
    try:
        return _restore_with_journal(args, journal)
    except errors.RunNotFoundError:
        if not args.run:
            raise
        print(f"drill: run {args.run} is not in the journal; looking for its markers on the target", file=sys.stderr)
        return _from_markers(args, journal, run_id=args.run)
    except (errors.JournalUnavailableError, errors.JournalReadOnlyError) as exc:
        # Opened, but damaged or unwritable underneath: the markers still say what to restore.
        print(
            f"drill: the journal failed ({redaction.clean(str(exc))}); restoring from the markers on the target",
            file=sys.stderr,
        )
        return _from_markers(args, None, run_id=args.run)
    finally:
        journal.close()


def _restore_with_journal(args: argparse.Namespace, journal: journal_base.JournalStore) -> int:
    timing = settings.Timing()
    now = SystemClock().now()
    codes: list[int] = []
    if args.run:
        run = journal.resolve_run(args.run)
        live = recovery.liveness(run, now=now, lease_s=timing.lease_s)
        if live.alive and not live.expired and run.owner.startswith(recovery.RESTORER) and not args.force:
            raise errors.DrillError(
                f"run {run.run_id} is being restored by another `drill restore` ({live.detail}); "
                f"`drill status {run.run_id}` shows how it ends"
            )
        if live.alive and not live.expired and not args.force:
            raise errors.DrillError(
                f"run {run.run_id} is still running ({live.detail}); it restores by itself when it ends. "
                f"`drill abort {run.run_id} --as NAME` ends it now; --force takes it over anyway"
            )
        reason = "taken over by `drill restore`: " + (
            "past its deadline" if live.expired else ("forced" if live.alive else live.detail)
        )
        codes.append(restore_run(args, journal, run, reason))
    if args.expired:
        expired_runs = {s.run_id for s in restoring.expired_suspensions(journal, now=now)}
        expired_runs.update(
            r.run_id for r in journal.list_runs(limit=100_000, active_only=True) if r.deadline_at <= now
        )
        for run_id in sorted(expired_runs):
            run = journal.get_run(run_id)
            try:
                codes.append(restore_run(args, journal, run, f"deadline passed ({iso(run.deadline_at)})"))
            except errors.DrillError as exc:
                print(f"drill: {exc}", file=sys.stderr)
                codes.append(1)
        if not expired_runs:
            print("no run in the journal is past its deadline")
        codes.append(_from_markers(args, journal, run_id=None))
    return worst(codes)


def worst(codes: list[int]) -> int:
    """Not restored (5) matters most, then an error (1), then restored-but-not-journaled (6)."""
    for code in (5, 1, 6):
        if code in codes:
            return code
    return 0
