"""``drill``: the entry point. Keep this module light: ``drill --help`` must be fast and must not import
kubernetes, slack_sdk or apscheduler; commands are imported only when they run."""

from __future__ import annotations

import argparse
import atexit
import gc
import importlib
import sys
from collections.abc import Callable, Sequence

_F = argparse.RawDescriptionHelpFormatter

DESCRIPTION = """\
drill: chaos experiments and no-automation fire drills.

A drill suspends remediation automation, injects a fault with Chaos Toolkit, times how the
humans respond (acknowledge, diagnose, mitigate, resolve), restores the automation (always,
verified) and writes a report.

first steps:
  drill demo                                   a whole drill on the local sandbox, simulated responder
  drill validate drills/examples/*.yaml        check drill files (and their experiments)
  drill plan drills/examples/sandbox-no-automation.yaml
  drill sandbox start && drill run drills/examples/sandbox-no-automation.yaml

during a run, from any terminal on the machine:
  drill ack RUN --as alice                     acknowledge (also: diagnosed, mitigated, resolve)
  drill hint RUN --as alice                    reveal the next hint
  drill abort RUN --as bob -m "real incident"  abort: automation is restored first

state lives in $DRILL_HOME (default ~/.local/state/drill); reports in ./reports/archive
(or $DRILL_ARCHIVE).
"""


def _add(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    target: str,
    help_: str,
    example: str,
) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help_, description=f"{help_}\n\nexamples:\n{example}", formatter_class=_F)
    parser.set_defaults(target=target)
    return parser


def _run_ref(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN", help="run id (a unique prefix is enough), 'active' or 'latest'")


def _responder(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    help_: str,
    *,
    message_required: bool = False,
) -> None:
    example = f"  drill {name} RUN --as alice" + (' -m "..."' if message_required else "")
    if name == "diagnosed":
        example = '  drill diagnosed RUN --as alice -m "the service is down and auto-restart is off"'
    parser = _add(sub, name, "orchestrator.cli.responding:command", help_, example)
    _run_ref(parser)
    parser.add_argument("--as", dest="actor", required=True, metavar="NAME", help="who you are (a participant)")
    parser.add_argument("-m", "--message", required=message_required, default="", help="text for the timeline")
    parser.set_defaults(command_name=name)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="drill", description=DESCRIPTION, formatter_class=_F)
    parser.add_argument("--home", help="state folder (journal, sandbox); default $DRILL_HOME or ~/.local/state/drill")
    parser.add_argument("--archive", help="report archive folder; default $DRILL_ARCHIVE or ./reports/archive")
    sub = parser.add_subparsers(dest="cmd", metavar="COMMAND", required=True)

    p = _add(
        sub,
        "validate",
        "orchestrator.cli.definitions:validate",
        "Check drill files and their Chaos Toolkit experiments; changes nothing.",
        "  drill validate drills/examples/sandbox-no-automation.yaml\n  drill validate drills/**/*.yaml",
    )
    p.add_argument("files", nargs="+", metavar="FILE")

    p = _add(
        sub,
        "plan",
        "orchestrator.cli.definitions:plan",
        "Show what a run would do: each policy and its current value, the fault, the deadline, what "
        "will be restored. Reads only.",
        "  drill plan drills/examples/sandbox-no-automation.yaml\n"
        "  drill plan drills/kubernetes/no-automation.yaml --context staging",
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument("--context", metavar="NAME", help="Kubernetes targets: the kubeconfig context to use instead")

    p = _add(
        sub,
        "run",
        "orchestrator.cli.running:run",
        "Run a drill: preflight, suspend automation, inject the fault, time the response, restore, report.",
        "  drill run drills/examples/sandbox-no-automation.yaml\n"
        "  drill run drills/examples/sandbox-no-automation.yaml --auto-respond ack=2s,mitigate=6s,resolve=9s\n"
        "  drill run drills/examples/sandbox-auto-recovery.yaml\n\n"
        "exit status: 0 completed, 2 invalid or preflight failed (nothing changed), 3 timed out / not\n"
        "recovered, 4 aborted (automation restored), 5 automation NOT restored: act now, 6 automation\n"
        "restored and verified but not everything was recorded (journal or report), 7 taken over by\n"
        "another process (which restores it).\n\n"
        "SIGINT, SIGTERM, SIGHUP and SIGQUIT all abort the run and restore the automation first.",
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument(
        "--auto-respond",
        metavar="STEPS",
        help="simulate a responder: KEY=DELAY,... with KEY in ack, diagnose, mitigate, resolve, hint, abort; "
        "delays from the moment the fault is active",
    )
    p.add_argument("--plain", action="store_true", help="print events line by line instead of the live view")
    p.add_argument(
        "--context", metavar="NAME", help="Kubernetes targets: the kubeconfig context (overrides spec.target.context)"
    )
    ctk = p.add_argument_group(
        "Chaos Toolkit options (as `chaos run` takes them)",
        "These override the drill file's spec.experiment.chaos: --var per key over its vars, --var-file files\n"
        "read after its varFiles (every var still wins over every var file, as with chaos run), --settings,\n"
        "--dry and the strategies instead of its own.",
    )
    ctk.add_argument(
        "--var", action="append", default=[], metavar="KEY[:TYPE]=VALUE", help="a configuration value; repeatable"
    )
    ctk.add_argument(
        "--var-file", action="append", default=[], metavar="FILE", help="configuration/secrets (JSON, YAML, .env)"
    )
    ctk.add_argument("--settings", metavar="FILE", help="a Chaos Toolkit settings file (global controls)")
    ctk.add_argument("--dry", choices=["probes", "actions", "activities", "pause"], help="skip these activities")
    ctk.add_argument(
        "--hypothesis-strategy",
        choices=["default", "before-method-only", "after-method-only", "during-method-only", "continuously", "skip"],
        help="when the steady-state hypothesis is checked (default: the drill file's, else the experiment's "
        "runtime block)",
    )
    ctk.add_argument(
        "--rollback-strategy",
        choices=["default", "always", "never", "deviated"],
        help="when rollbacks are played (default: the drill file's, else the experiment's runtime block)",
    )

    p = _add(
        sub,
        "demo",
        "orchestrator.cli.running:demo",
        "Run the sandbox no-automation drill end to end with a simulated responder; no cluster, no Slack.",
        "  drill demo\n  drill demo --auto-respond ack=1s,diagnose=2s,mitigate=4s,resolve=7s",
    )
    p.add_argument("--auto-respond", metavar="STEPS", default="ack=2s,diagnose=4s,mitigate=6s,resolve=9s")
    p.add_argument("--plain", action="store_true", help="print events line by line instead of the live view")

    p = _add(
        sub,
        "status",
        "orchestrator.cli.responding:status",
        "Show a run's state and timeline.",
        "  drill status active\n  drill status latest --json",
    )
    _run_ref(p)
    p.add_argument("--json", action="store_true", help="print the report document as JSON")

    p = _add(sub, "runs", "orchestrator.cli.responding:runs", "List runs, newest first.", "  drill runs --limit 5")
    p.add_argument("--limit", type=int, default=20)

    p = _add(
        sub,
        "journal",
        "orchestrator.cli.responding:journal",
        "Print a run's journal as JSON lines (every transition and automated action).",
        "  drill journal latest > run.jsonl",
    )
    _run_ref(p)

    _responder(sub, "ack", "Acknowledge the drill's notification.")
    _responder(sub, "diagnosed", "Declare the cause (the facilitator may confirm).")
    _responder(sub, "mitigated", "Declare the impact mitigated (the steady state is also watched).")
    _responder(sub, "resolve", "Resolve: the drill rolls the fault back, restores automation and reports.")
    _responder(sub, "abort", "Abort the drill: roll back the fault and restore automation now.")
    _responder(sub, "note", "Add a note to the timeline.", message_required=True)
    _responder(sub, "hint", "Reveal the drill's next hint (counted in the report).")

    p = _add(
        sub,
        "restore",
        "orchestrator.cli.restoring:restore",
        "Restore automation a run suspended, from the journal (and markers), verified by reading back. "
        "Use after a crash or a killed `drill run`.",
        "  drill restore my-drill-20261129-101500-ab12\n  drill restore --expired\n"
        "  drill restore --expired --kubeconfig ~/.kube/config --context prod   # no journal here: the markers\n"
        "  drill restore my-drill-20261129-101500-ab12 --from-markers   # the journal is lost or damaged\n\n"
        "exit status: 0 restored (or nothing to restore), 1 refused (the run is alive, or another restore\n"
        "took it over first), 3 automation restored but the fault's rollback failed, 5 automation NOT\n"
        "restored, 6 restored and verified but not everything recorded.",
    )
    p.add_argument("run", metavar="RUN", nargs="?", help="run id or prefix")
    p.add_argument("--expired", action="store_true", help="restore every suspension past its deadline")
    p.add_argument(
        "--force",
        action="store_true",
        help="take the run over even though its process still heartbeats, and overwrite suspended fields "
        "that someone changed during the drill (a restore refuses to clobber them without it)",
    )
    p.add_argument(
        "--from-markers",
        action="store_true",
        help="ignore the journal: restore from the markers on the target (automatic when the journal is unusable)",
    )
    p.add_argument(
        "--target", dest="marker_target", metavar="KEY", help="where to look for markers, e.g. sandbox:/path"
    )
    p.add_argument("--drill", metavar="FILE", help="look for markers on this drill file's target")
    kube = p.add_argument_group("Kubernetes (restore from the markers in a cluster, no journal needed)")
    kube.add_argument("--kubeconfig", metavar="FILE", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
    kube.add_argument("--context", metavar="NAME", help="kubeconfig context (default: the current one)")
    kube.add_argument(
        "--in-cluster", action="store_true", help="use the pod's ServiceAccount (the restore CronJob does)"
    )

    p = _add(
        sub,
        "schema",
        "orchestrator.cli.definitions:schema",
        "Print the JSON Schema of drill files.",
        "  drill schema > drill.schema.json",
    )

    p = _add(
        sub,
        "sandbox",
        "orchestrator.cli.sandboxing:sandbox",
        "Manage the local sandbox: a real HTTP service under a supervisor whose auto-restart is the policy.",
        "  drill sandbox start\n  drill sandbox status\n  drill sandbox restart   # a responder's mitigation\n"
        "  drill sandbox stop",
    )
    p.add_argument("action", choices=["start", "stop", "status", "restart"])
    p.add_argument("--port", type=int, default=0, help="service port for start (default: a free one, then kept)")
    p = _add(
        sub,
        "report",
        "orchestrator.cli.reporting:list_runs",
        "The archive of finished runs: list, show, rebuild the index, verify checksums, build a demo archive.",
        "  drill report list --limit 10\n  drill report show RUN\n  drill report rebuild --catalog drills/catalog\n"
        "  drill report verify\n  drill report demo --out /tmp/drill-demo\n"
        "  drill report retention --as-of 2026-03-31\n  drill report coverage --json\n"
        "  drill report site --out reports/site --catalog drills/catalog\n"
        "  drill report incidents --context prod --namespace shop --since 1h --threshold 3 --json",
    )
    actions = p.add_subparsers(dest="report_cmd", metavar="ACTION", required=True)
    a = actions.add_parser("list", help="archived runs, newest first (from the index)")
    a.set_defaults(target="orchestrator.cli.reporting:list_runs")
    a.add_argument("--limit", type=int, default=20)
    a.add_argument("--failure-mode", dest="failure_mode", metavar="SERVICE/ID")
    a.add_argument("--person", metavar="NAME")
    a.add_argument("--json", action="store_true")
    a = actions.add_parser("show", help="one archived run")
    a.set_defaults(target="orchestrator.cli.reporting:show")
    a.add_argument("run", metavar="RUN", help="run id (a unique prefix is enough)")
    a.add_argument("--json", action="store_true")
    a = actions.add_parser("rebuild", help="rebuild the index from the archive's files (and the catalog)")
    a.set_defaults(target="orchestrator.cli.reporting:rebuild")
    a.add_argument("--catalog", metavar="DIR", help="catalog folder; default drills/catalog when it exists")
    a = actions.add_parser("verify", help="check every archived file against its manifest (exit 1 on a mismatch)")
    a.set_defaults(target="orchestrator.cli.reporting:verify")
    a = actions.add_parser("site", help="the archive as a static site: index, a page per run, retention, coverage")
    a.set_defaults(target="orchestrator.cli.site:build")
    a.add_argument("--out", default="reports/site", metavar="DIR", help="folder to write (default reports/site)")
    a.add_argument("--catalog", metavar="DIR", help="catalog folder; default drills/catalog, else the index's")
    a.add_argument(
        "--as-of", dest="as_of", metavar="DATE", help="as of the end of DATE (UTC) or an ISO date-time; default now"
    )
    a.add_argument(
        "--window-days",
        dest="window_days",
        type=int,
        default=90,
        metavar="N",
        help="current (retention) or verified (coverage) = fewer than N days ago (default 90)",
    )
    a = actions.add_parser("incidents", help="automated recoveries per service in a cluster (exit 1: one flagged)")
    a.set_defaults(target="orchestrator.cli.incidents:report")
    a.add_argument("--context", help="kubeconfig context (default: the current one)")
    a.add_argument("--kubeconfig", metavar="PATH", help="default $KUBECONFIG or ~/.kube/config")
    a.add_argument("--namespace", "-n", action="append", metavar="NS", help="repeatable; default: every namespace")
    a.add_argument("--since", default="1h", help="the window, back from now (default 1h)")
    a.add_argument("--period", default="1h", help="the threshold's period (default 1h)")
    a.add_argument("--threshold", type=int, default=3, help="flag a service with more than this many per period (3)")
    a.add_argument("--top", type=int, default=10, help="services listed (flagged ones always)")
    a.add_argument("--json", action="store_true", help="print the report document as JSON")
    a = actions.add_parser("demo", help="build a synthetic year of drills, indexed, and print where it is")
    a.set_defaults(target="orchestrator.cli.reporting:demo")
    a.add_argument("--out", default="reports/demo")
    a.add_argument("--seed", type=int, default=7)
    a.add_argument("--runs", type=int, default=400)
    a.add_argument("--people", type=int, default=24)
    a.add_argument("--failure-modes", dest="failure_modes", type=int, default=20)
    for name, help_text in (
        ("retention", "skill retention: person x failure mode, days since practice, readiness, trend"),
        ("coverage", "auto-recovery coverage: claimed vs verified automation, red flags"),
    ):
        a = actions.add_parser(name, help=help_text)
        a.set_defaults(target=f"orchestrator.cli.crossreports:{name}")
        a.add_argument("--json", action="store_true", help="print the report document (JSON, versioned)")
        a.add_argument(
            "--as-of", dest="as_of", metavar="DATE", help="as of the end of DATE (UTC) or an ISO date-time; default now"
        )
        a.add_argument(
            "--window-days",
            dest="window_days",
            type=int,
            default=90,
            metavar="N",
            help="current (retention) or verified (coverage) = fewer than N days ago (default 90)",
        )
        a.add_argument("--catalog", metavar="DIR", help="catalog folder; default drills/catalog, else the index's")
    return parser


def _resolve(target: str) -> Callable[[argparse.Namespace], int]:
    module, _, func = target.partition(":")
    handler: Callable[[argparse.Namespace], int] = getattr(importlib.import_module(module), func)
    return handler


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:  # the process's own command line: it exits when this returns
        # Exit without the interpreter's last garbage collections over every object the command
        # imported (0.1-0.2 s after a run): frozen objects are left to the process's end. Only the
        # finalizers of objects in reference cycles are skipped; files, the journal and the index
        # are closed explicitly before, and every other exit handler still runs (this one first).
        atexit.register(gc.freeze)
    args = build_parser().parse_args(argv)
    handler = _resolve(args.target)
    from orchestrator import errors

    try:
        return handler(args)
    except BrokenPipeError:
        # `drill status | head`: the reader left; say nothing more, to nobody.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except errors.DefinitionErrors as exc:
        for error in exc.errors:
            _say(f"drill: {error}")
        return 2
    except errors.PreflightError as exc:
        _say(f"drill: {exc}")
        return 2
    except errors.DrillError as exc:
        _say(f"drill: error: {exc}")
        return 1


def _say(text: str) -> None:
    """Every error line passes the one redaction: an error may quote what a user typed (a token as a name)."""
    import contextlib

    from orchestrator import redaction

    with contextlib.suppress(OSError):  # stderr is gone (the terminal closed): the exit status still says it
        print(redaction.clean(text), file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
