"""``drill report site --out DIR [--catalog DIR] [--as-of DATE] [--window-days N]``: the archive as a static site.

Reads the archive's files (every run page) and its index (the cross-drill reports; ``drill report rebuild``
first when runs were added by hand). The catalog: ``--catalog DIR``, else ``drills/catalog`` when it exists,
else the catalog the index was rebuilt with; with none, the site has the runs only and says so.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from orchestrator.archive import site, windows
from orchestrator.cli import context, crossreports


def build(args: argparse.Namespace) -> int:
    """``drill report site``: write the site and print where its index page is."""
    as_of = windows.parse_as_of(getattr(args, "as_of", None))
    catalog = crossreports._catalog(args)  # refused with file, line and field before anything is written
    window = crossreports._window(args)
    out = Path(getattr(args, "out", None) or "reports/site")
    began = time.perf_counter()
    summary = site.build_site(context.paths(args).archive, out, catalog=catalog, as_of=as_of, window_days=window)
    for line in summary.skipped:
        print(f"  left out: {line}", file=sys.stderr)
    reports = f" and {', '.join(summary.cross_reports)}" if summary.cross_reports else ""
    print(
        f"site of {summary.runs} runs{reports}: {summary.files} files in {time.perf_counter() - began:.1f} s; "
        f"open {(out / 'index.html').resolve()}"
    )
    return 0
