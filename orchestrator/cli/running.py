"""``drill run`` and ``drill demo``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from orchestrator import durations, errors
from orchestrator.cli import context, live
from orchestrator.clock import SystemClock
from orchestrator.definitions import loading

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
    paths = context.paths(args)
    journal = context.journal(args)
    target = registry.from_spec(loaded.drill.spec.target, default_sandbox_home=paths.sandbox_home)
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
        )
        result = run.run()
    finally:
        view.close()
        journal.close()
    _summary(result.report_dir)
    if not result.restore_ok:
        print(
            f"drill: AUTOMATION NOT RESTORED for run {result.run_id}; see the report, then "
            f"`drill restore {result.run_id}`",
            file=sys.stderr,
        )
    elif result.abort_reason:
        print(
            f"drill: run {result.run_id} aborted ({result.abort_reason}); automation restored.",
            file=sys.stderr,
        )
    return result.exit_code


def _summary(report_dir: str | None) -> None:
    if not report_dir:
        return
    import json

    report = json.loads((Path(report_dir) / "report.json").read_text(encoding="utf-8"))
    print(f"\noutcome: {report['outcome']}")
    for t in report["timings"]:
        value = (
            durations.format_duration(t["seconds"])
            if t["seconds"] is not None
            else (f"> {durations.format_duration(t['lower_bound_s'])} (censored)" if t["censored"] else "-")
        )
        expected = f" (target {durations.format_duration(t['expected_s'])})" if t["expected_s"] else ""
        print(f"  {t['name']:<12} {value}{expected}")
    for p in report["policies"]:
        print(f"  policy {p['name']}: restored {'and verified' if p['restore_verified'] else 'NOT VERIFIED'}")
    print(f"report: {Path(report_dir) / 'report.md'}")


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
