"""``drill report incidents``: automated recoveries per service in a Kubernetes cluster, over a window.

Reads the cluster (``adapters.kubeevents``), builds the typed report (``archive.incidents``) and
prints it as text or, with ``--json``, as the report document. Exit 0 when nothing is flagged,
1 when a service is over the threshold (so a scheduled job can alert on it).
"""

from __future__ import annotations

import argparse
import json
import time

from orchestrator import durations, errors
from orchestrator.adapters import kubeevents
from orchestrator.archive import incidents


def report(args: argparse.Namespace) -> int:
    """``drill report incidents [--context CTX] [--kubeconfig PATH] [--namespace NS]... [--since 1h]``."""
    try:
        since_s = durations.parse_duration(getattr(args, "since", "1h"))
        period_s = durations.parse_duration(getattr(args, "period", "1h"))
    except ValueError as exc:
        raise errors.ReportError(str(exc)) from exc
    namespaces = list(getattr(args, "namespace", None) or []) or None
    context = getattr(args, "context", None)
    api = kubeevents.api_client(getattr(args, "kubeconfig", None), context)
    try:
        observations = kubeevents.observe(api, namespaces)
    finally:
        api.close()
    until = time.time()
    doc = incidents.build(
        observations,
        since=until - since_s,
        until=until,
        threshold=getattr(args, "threshold", incidents.DEFAULT_THRESHOLD),
        period_s=period_s,
        top=getattr(args, "top", incidents.DEFAULT_TOP),
        context=context,
        namespaces=namespaces,
    )
    if getattr(args, "json", False):
        print(json.dumps(doc.model_dump(mode="json"), indent=2))
    else:
        print(incidents.render_text(doc))
    return 1 if doc.flagged else 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``drill report incidents`` (for ``cli/main.py``)."""
    parser.set_defaults(target="orchestrator.cli.incidents:report")
    parser.add_argument("--context", help="kubeconfig context (default: the current one)")
    parser.add_argument("--kubeconfig", metavar="PATH", help="default $KUBECONFIG or ~/.kube/config")
    parser.add_argument("--namespace", "-n", action="append", metavar="NS", help="repeatable; default: every namespace")
    parser.add_argument("--since", default="1h", help="window, back from now (default 1h)")
    parser.add_argument("--period", default="1h", help="the threshold's period (default 1h)")
    parser.add_argument(
        "--threshold", type=int, default=incidents.DEFAULT_THRESHOLD, help="flag above this many per period (3)"
    )
    parser.add_argument("--top", type=int, default=incidents.DEFAULT_TOP, help="services listed (flagged always)")
    parser.add_argument("--json", action="store_true", help="print the report document as JSON")
