"""The archive: runs stored whole or not at all with checksums; the index rebuilt from the files equals the
incrementally built one (SQLite and PostgreSQL); the synthetic archive is byte-for-byte reproducible."""

from __future__ import annotations

import argparse
import hashlib
import json
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from orchestrator.archive import generating, indexing, storing
from orchestrator.cli import reporting
from orchestrator.definitions import catalog
from orchestrator.journal import base as journal_base
from tests.conftest import REPO
from tests.unit.archive.conftest import T0, finished_run

START = datetime(2026, 1, 1, tzinfo=UTC)


def _tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != indexing.INDEX_FILE and not p.name.startswith(indexing.INDEX_FILE)
    }


def test_a_run_is_archived_with_a_manifest_of_checksums(journal: journal_base.JournalStore, tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    run_id = finished_run(journal, "sandbox-no-automation-20260101-000000-ab12")
    folder = storing.archive_run(journal, run_id, archive, now=T0 + 400)
    assert sorted(p.name for p in folder.iterdir()) == ["journal.jsonl", "manifest.json", "report.json", "report.md"]
    manifest = json.loads((folder / "manifest.json").read_text())
    for name in storing.FILES:
        data = (folder / name).read_bytes()
        assert manifest["files"][name] == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    assert storing.verify(archive).ok == [run_id]
    before = _tree(archive)
    assert storing.archive_run(journal, run_id, archive, now=T0 + 999) == folder  # immutable
    assert _tree(archive) == before
    assert [p.name for p in archive.iterdir()] == [run_id]  # no staging left behind


def test_verify_names_a_changed_a_missing_and_an_added_file(journal: journal_base.JournalStore, tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    run_id = finished_run(journal, "r-1")
    folder = storing.archive_run(journal, run_id, archive, now=T0 + 400)
    (folder / "report.md").write_text("edited\n")
    (folder / "journal.jsonl").unlink()
    (folder / "extra.txt").write_text("x")
    (archive / "legacy-run").mkdir()
    result = storing.verify(archive)
    assert result.ok == [] and result.unarchived == ["legacy-run"]
    assert any(p.startswith("r-1/report.md: sha256") for p in result.problems)
    assert "r-1/journal.jsonl: missing" in result.problems
    assert any(p.startswith("r-1/extra.txt: not in the manifest") for p in result.problems)
    assert reporting.verify(argparse.Namespace(home=None, archive=str(archive))) == 1


def test_archiving_replaces_a_report_folder_written_before_archiving(
    journal: journal_base.JournalStore, tmp_path: Path
) -> None:
    archive = tmp_path / "archive"
    run_id = finished_run(journal, "r-legacy")
    (archive / run_id).mkdir(parents=True)
    (archive / run_id / "report.json").write_text("{}")
    folder = storing.archive_run(journal, run_id, archive, now=T0 + 400)
    assert storing.check(folder) == []
    assert sorted(p.name for p in archive.iterdir()) == [run_id]


_KILLER = """
import os, signal, sys
from pathlib import Path
from orchestrator.archive import storing
from orchestrator.journal import store

step, target = sys.argv[1], sys.argv[2]
calls = {"n": 0}
def kill_at(name, real):
    def wrapper(*args, **kwargs):
        if name == step:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)
    return wrapper
if step == "manifest":
    storing.manifest_text = kill_at("manifest", storing.manifest_text)
elif step == "rename":
    storing.os.rename = kill_at("rename", os.rename)
elif step == "replace":
    storing.os.replace = kill_at("replace", os.replace)
elif step == "sweep-after-rename":
    real = os.rename
    def after(*a, **k):
        real(*a, **k)
        os.kill(os.getpid(), signal.SIGKILL)
    storing.os.rename = after
journal = store.open_journal(Path(target) / "journal.db")
storing.archive_run(journal, "r-kill", Path(target) / "archive", now=1767226000.0)
"""


@pytest.mark.parametrize("step", ["manifest", "replace", "rename", "sweep-after-rename"])
@pytest.mark.parametrize("legacy", [False, True], ids=["new", "over-a-legacy-folder"])
def test_sigkill_during_archiving_leaves_the_whole_run_or_nothing(tmp_path: Path, step: str, legacy: bool) -> None:
    from orchestrator.journal import store

    journal = store.open_journal(tmp_path / "journal.db")
    finished_run(journal, "r-kill")
    archive = tmp_path / "archive"
    if legacy:
        (archive / "r-kill").mkdir(parents=True)
        (archive / "r-kill" / "report.json").write_text("{}")
    if step == "replace" and not legacy:
        step = "rename"
    child = subprocess.run(
        [sys.executable, "-c", _KILLER, step, str(tmp_path)], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    folder = archive / "r-kill"
    if storing.is_archived(folder):
        assert storing.check(folder) == []  # the whole run
        assert step == "sweep-after-rename"
    else:
        # nothing: no folder, or the un-archived report folder exactly as it was
        assert not folder.exists() or (legacy and json.loads((folder / "report.json").read_text()) == {})
    rebuilt = indexing.rebuild_index(archive)  # leftovers are never read as runs
    assert rebuilt.runs == (1 if storing.is_archived(folder) else 0)
    assert storing.verify(archive).problems == []
    storing.archive_run(journal, "r-kill", archive, now=T0 + 500)  # archiving again completes it
    storing.sweep(archive, older_than_s=0)
    assert storing.check(folder) == [] and [p.name for p in archive.iterdir() if p.is_dir()] == ["r-kill"]
    journal.close()


def test_the_rebuilt_index_equals_the_incremental_one(tmp_path: Path, index_url: str) -> None:
    made = generating.generate(tmp_path / "gen", seed=3, runs=60, people=12, failure_modes=8, start=START, days=365)
    loaded = catalog.load_catalog(made.catalog)
    incremental = indexing.open_index(made.archive, url=index_url)
    indexing.index_catalog(incremental, loaded)
    for folder in storing.run_folders(made.archive):
        indexing.index_run(incremental, folder)
    indexing.index_run(incremental, storing.run_folders(made.archive)[0])  # twice: replaces, never doubles
    first = incremental.dump()
    result = indexing.rebuild_index(made.archive, index=incremental, catalog=loaded)
    assert result.runs == 60 and result.skipped == []
    assert incremental.dump() == first
    other = indexing.open_index(made.archive, url=tmp_path / "fresh.db")
    indexing.rebuild_index(made.archive, index=other, catalog=loaded)
    assert other.dump() == first
    other.close()
    incremental.close()


def test_the_synthetic_archive_is_reproducible_and_indexes_to_the_expected_counts(tmp_path: Path) -> None:
    one = generating.generate(tmp_path / "a", seed=11, runs=120, people=15, failure_modes=10, start=START, days=365)
    two = generating.generate(tmp_path / "b", seed=11, runs=120, people=15, failure_modes=10, start=START, days=365)
    assert _tree(one.root) == _tree(two.root) and len(_tree(one.root)) == 120 * 4 + 2
    other = generating.generate(tmp_path / "c", seed=12, runs=120, people=15, failure_modes=10, start=START, days=365)
    assert _tree(other.root) != _tree(one.root)
    assert storing.verify(one.archive).problems == []
    loaded = catalog.load_catalog(one.catalog)
    assert len(loaded.failure_modes) == 10 and len(loaded.people) == 15
    indexing.rebuild_index(one.archive, catalog=loaded)
    # expected figures, read from the files directly (not through the index code)
    reports = [json.loads((f / "report.json").read_text()) for f in sorted(one.archive.iterdir()) if f.is_dir()]
    participants = sum(len(r["participants"]) for r in reports)
    timings = sum(len(r["timings"]) for r in reports)
    modes = {r["mode"] for r in reports}
    outcomes = {r["outcome"] for r in reports}
    index = indexing.open_index(one.archive, read_only=True)
    assert index.counts() == {
        "archive_runs": 120,
        "archive_participants": participants,
        "archive_timings": timings,
        "archive_files": 360,
        "archive_failure_modes": 10,
        "archive_people": 15,
    }
    rows = index.list_runs()
    index.close()
    assert modes == {"no-automation", "auto-recovery"}
    assert {"unaided", "with hints", "recovered"} <= outcomes
    assert any(r["hints_used"] for r in reports)
    assert [r["started_s"] for r in rows] == sorted((r["started_s"] for r in rows), reverse=True)


def test_report_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DRILL_INDEX_URL", raising=False)
    demo = tmp_path / "demo"
    assert reporting.demo(argparse.Namespace(out=str(demo), seed=5, runs=40, people=8, failure_modes=6)) == 0
    assert f"archive: {demo / 'archive'}" in capsys.readouterr().out
    args = argparse.Namespace(home=str(tmp_path / "home"), archive=str(demo / "archive"), limit=5, json=False)
    assert reporting.list_runs(args) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 5
    run_id = listed[0].split()[1]
    assert reporting.show(argparse.Namespace(**{**vars(args), "run": run_id[:-2]})) == 0
    shown = capsys.readouterr().out
    assert shown.startswith(f"{run_id}:") and "timings:" in shown
    assert reporting.verify(args) == 0
    assert "40 runs verified, 0 problems" in capsys.readouterr().out
    rebuild = argparse.Namespace(**{**vars(args), "catalog": str(demo / "catalog")})
    assert reporting.rebuild(rebuild) == 0
    assert "indexed 40 runs" in capsys.readouterr().out
