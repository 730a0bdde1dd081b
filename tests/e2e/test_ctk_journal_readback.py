"""The journal.json drill archives reads back as the one `chaos run` writes for the same experiment.

chaoslib 1.44 and chaostoolkit 1.19 have no journal loader, and the one tool that reads journals,
chaostoolkit-reporting (`chaos report`), is no test dependency: it imports matplotlib, numpy, pygal, maya and
cairosvg (which needs the cairo C library) at import time, and its loading is ``json.load`` followed by key
lookups. So the journal is read back as chaos's tools read one (JSON, and chaoslib's own file parser), its
keys checked against the journal chaoslib builds (``initialize_run_journal``, then the run's ``end`` and
``duration``), the lookups `chaos report` makes done on it, and it is compared field by field with the
journal `chaos run --journal-path` writes for the same experiment, times aside (they are checked well-formed).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from chaoslib.caching import cache_activities, clear_cache, lookup_activity
from chaoslib.loader import parse_experiment_from_file
from chaoslib.run import initialize_run_journal

from tests.e2e.ctkcli import drill_run, shared_sandbox
from tests.unit.ctk.harness import chaos_run, experiment

pytestmark = pytest.mark.e2e
TIMES = frozenset({"start", "end", "duration"})


@pytest.fixture(scope="module")
def sandbox_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with shared_sandbox(tmp_path_factory.mktemp("readback-sandbox")) as home:
        yield home


def _without_times(value: Any, times: list[tuple[str, Any]], where: str = "") -> Any:
    """``value`` without its start/end/duration fields, which are collected into ``times``."""
    if isinstance(value, dict):
        kept = {}
        for key, item in value.items():
            if key in TIMES and where != ".experiment" and not where.endswith(".activity"):
                times.append((f"{where}.{key}", item))
            else:
                kept[key] = _without_times(item, times, f"{where}.{key}")
        return kept
    if isinstance(value, list):
        return [_without_times(item, times, f"{where}[{i}]") for i, item in enumerate(value)]
    return value


def _well_formed(times: list[tuple[str, Any]]) -> None:
    for where, value in times:
        if where.endswith(".duration"):
            assert isinstance(value, int | float) and value >= 0, (where, value)
        else:
            assert datetime.fromisoformat(value).tzinfo is not None, (where, value)


def _as_chaos_report_reads(journal: dict[str, Any]) -> dict[str, Any]:
    """The lookups chaostoolkit-reporting's ``generate_report`` makes on a journal before rendering it."""
    experiment_ = journal["experiment"]
    cache_activities(experiment_)
    try:
        method = [lookup_activity(a["ref"]) if "ref" in a else a for a in experiment_["method"]]
    finally:
        clear_cache()
    return {
        "chaoslib_version": journal["chaoslib-version"],
        "hypo": experiment_.get("steady-state-hypothesis"),
        "num_probes": sum(a["type"] == "probe" for a in method),
        "num_actions": sum(a["type"] == "action" for a in method),
        "human_duration": str(timedelta(seconds=journal["duration"])),
        "runs": [(r["activity"]["name"], r["status"], r.get("output")) for r in journal["run"]],
    }


@pytest.mark.parametrize("name", ["plain", "failing-action", "deviating", "controls"])
def test_drills_journal_reads_back_as_chaos_runs(tmp_path: Path, sandbox_home: Path, name: str) -> None:
    chaos = chaos_run(tmp_path, name)
    assert chaos.side is not None, chaos.stderr
    drill = drill_run(tmp_path / "drill", name, sandbox=sandbox_home)
    assert drill.report is not None, drill.output
    path = drill.report / "journal.json"

    ours = json.loads(path.read_text(encoding="utf-8"))
    assert parse_experiment_from_file(str(path)) == ours  # chaoslib's own reader reads the same
    theirs = chaos.side.journal
    built = set(initialize_run_journal(experiment(name)))  # the journal chaoslib starts a run with
    assert set(ours) == set(theirs) == built | {"end", "duration"}

    our_times: list[tuple[str, Any]] = []
    their_times: list[tuple[str, Any]] = []
    assert _without_times(ours, our_times) == _without_times(theirs, their_times)  # field by field
    assert [where for where, _ in our_times] == [where for where, _ in their_times]
    assert len(our_times) >= 3 * 4  # the run's, each probe's and each activity's start, end, duration
    _well_formed(our_times)
    assert ours["experiment"] == experiment(name) | {"dry": None}  # as given: drill's own control is not in it

    assert _as_chaos_report_reads(ours) == _as_chaos_report_reads(theirs) | {
        "human_duration": str(timedelta(seconds=ours["duration"]))
    }
