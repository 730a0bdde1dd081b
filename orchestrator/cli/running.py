"""``drill run`` and ``drill demo``."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator import durations, errors
from orchestrator.cli import context, live
from orchestrator.clock import SystemClock
from orchestrator.definitions import loading

if TYPE_CHECKING:
    from orchestrator.run import engine as engine_options
    from orchestrator.run import results

DEMO_DRILL = Path("drills") / "examples" / "sandbox-no-automation.yaml"


def _execute(args: argparse.Namespace, drill_file: Path) -> int:
    from orchestrator.run import autorespond, engine
    from orchestrator.targets import registry

    auto = None
    if getattr(args, "auto_respond", None):
        try:
            auto = autorespond.parse(args.auto_respond)
        except ValueError as exc:
            print(f"drill: {exc}", file=sys.stderr)
            return 2
    loaded = loading.load_drill(drill_file)
    chaos = _chaos_options(args, loaded)
    paths = context.paths(args)
    journal = context.journal(args)
    target = registry.from_spec(
        loaded.drill.spec.target, default_sandbox_home=paths.sandbox_home, context=getattr(args, "context", None)
    )
    target.prepare_experiment()  # chaostoolkit-kubernetes: this target's kubeconfig and context, explicitly
    view = live.make_view(loaded.drill.metadata.name, plain=args.plain)
    try:
        run = engine.Engine(
            loaded,
            journal=journal,
            target=target,
            paths=paths,
            clock=SystemClock(),
            auto_respond=auto,
            observer=view,
            chaos=chaos,
        )
        result = run.run()
    finally:
        with contextlib.suppress(Exception):  # a closed terminal must not turn a restored run into a traceback
            view.close()
        with contextlib.suppress(Exception):
            journal.close()
    with contextlib.suppress(OSError):
        _summary(result)
    _verdict(result)
    return result.exit_code


def _chaos_options(args: argparse.Namespace, loaded: loading.LoadedDrill) -> engine_options.ChaosOptions:
    """``chaos run``'s options: the drill file's ``spec.experiment.chaos``, then the command line's over them.

    As if the file's options were typed before the command line's: ``--var`` keys override the file's
    ``vars``, ``--var-file`` files are read after its ``varFiles`` (every var still wins over every var
    file, as with ``chaos run``), and ``--settings``, ``--dry`` and the strategies replace the file's.
    Bad options are usage errors, before anything runs.
    """
    from orchestrator.adapters import ctkrun
    from orchestrator.run import engine

    in_file = loaded.drill.spec.experiment.chaos
    file_var_files, file_settings = loading.chaos_files(loaded.path, in_file)
    cli_var_files = tuple(Path(f) for f in getattr(args, "var_file", None) or [])
    for path in cli_var_files:
        if not path.is_file():
            raise errors.ExperimentError(f"--var-file {path}: no such file")
    settings_file = getattr(args, "settings", None)
    if settings_file and not Path(settings_file).is_file():
        raise errors.ExperimentError(f"--settings {settings_file}: no such file")
    settings_path = Path(settings_file) if settings_file else file_settings
    var_files = (*file_var_files, *cli_var_files)
    return engine.ChaosOptions(
        variables={**in_file.vars, **ctkrun.parse_vars(getattr(args, "var", None) or [])},
        var_files=var_files,
        var_file_values=ctkrun.read_var_files(var_files) if var_files else {},
        settings=ctkrun.load_settings_file(settings_path) if settings_path else None,
        dry=getattr(args, "dry", None) or in_file.dry,
        hypothesis_strategy=getattr(args, "hypothesis_strategy", None) or in_file.hypothesis_strategy,
        rollback_strategy=getattr(args, "rollback_strategy", None) or in_file.rollback_strategy,
    )


def _verdict(result: results.RunResult) -> None:
    """The one line that matters, on stderr, written so that a closed terminal cannot stop it mattering."""
    for gone in result.gone:
        with contextlib.suppress(OSError):
            print(f"drill: {gone}", file=sys.stderr)
    if result.taken_over is not None:
        line = (
            f"drill: run {result.run_id} was taken over by another process, which restores it; "
            f"this process wrote nothing more ({result.taken_over})"
        )
    elif not result.restore_ok:
        line = (
            f"drill: AUTOMATION NOT RESTORED for run {result.run_id}: {', '.join(result.failed)}; "
            f"see `drill status {result.run_id}`, then `drill restore {result.run_id}`"
        )
    elif not result.journal_ok:
        line = (
            f"drill: run {result.run_id}: automation restored and verified ({', '.join(result.restored) or 'none'}), "
            f"but the journal could not record it all: " + "; ".join(result.problems)
        )
    elif result.report_problem is not None:
        line = (
            f"drill: run {result.run_id}: automation restored and verified, but the report could not be "
            f"written: {result.report_problem}"
        )
    elif result.abort_reason:
        line = f"drill: run {result.run_id} aborted ({result.abort_reason}); automation restored."
    else:
        line = ""
    if result.index_problem is not None:
        line = (line + "\n" if line else "") + f"drill: note: {result.index_problem}"
    if line:
        with contextlib.suppress(OSError):
            print(line, file=sys.stderr, flush=True)


def _summary(result: results.RunResult) -> None:
    print(f"\noutcome: {result.outcome.value if result.outcome else 'unknown (the journal could not say)'}")
    if result.report_dir is None:
        for label in result.restored:
            print(f"  policy {label}: restored and verified")
        return
    from orchestrator.reporting import model

    report = model.load(Path(result.report_dir) / "report.json")
    for t in report.timings:
        value = (
            durations.format_duration(t.seconds)
            if t.seconds is not None
            else (f"> {durations.format_duration(t.lower_bound_s)} (censored)" if t.censored else "-")
        )
        expected = f" (target {durations.format_duration(t.expected_s)})" if t.expected_s else ""
        print(f"  {t.name:<12} {value}{expected}")
    for p in report.policies:
        print(f"  policy {p.name}: restored {'and verified' if p.restore_verified else 'NOT VERIFIED'}")
    print(f"report: {Path(result.report_dir) / 'report.md'}", flush=True)


def run(args: argparse.Namespace) -> int:
    return _execute(args, Path(args.file))


def _demo_drill() -> Path:
    for root in (Path.cwd(), Path(__file__).resolve().parents[2]):
        if (root / DEMO_DRILL).is_file():
            return root / DEMO_DRILL
    raise errors.DrillError(f"cannot find {DEMO_DRILL}; run `drill demo` from the drill checkout")


def demo(args: argparse.Namespace) -> int:
    from orchestrator.sandbox import control

    paths = context.paths(args)
    drill_file = _demo_drill()
    print(f"starting the local sandbox in {paths.sandbox_home} ...")
    try:
        status = control.start_sandbox(paths.sandbox_home)
    except control.SandboxError as exc:
        raise errors.TargetError(f"cannot start the sandbox: {exc}") from exc
    print(f"sandbox service at {status.url}, supervisor auto-restart {'on' if status.autorestart else 'off'}")
    print(f"running {drill_file} with a simulated responder ({args.auto_respond})\n")
    code = _execute(args, drill_file)
    after = control.SandboxClient(paths.sandbox_home).status()
    print(
        f"sandbox auto-restart is {'on' if after.autorestart else 'OFF'} again; `drill sandbox stop` stops the sandbox."
    )
    return code
