"""The failure-mode catalog and roster: the example loads; every malformed file is refused naming file:line and
field, and refusing writes nothing to the index.

Each ``tests/data/catalog/NN-*.yaml`` carries its expectation in a header (as ``tests/data/malformed``)::

    # replaces: roster.yaml                   (optional: it takes that file's place; else it is added)
    # expect-field: spec.people[1].roles[0]   (exact; ``(yaml)`` by prefix)
    # expect-line: 13
    # expect-text: listed twice               (optional)
"""

from __future__ import annotations

import argparse
import re
import shutil
from pathlib import Path

import pytest

from orchestrator import errors
from orchestrator.archive import indexing
from orchestrator.cli import reporting
from orchestrator.definitions import catalog
from tests.conftest import REPO

EXAMPLE = REPO / "drills" / "catalog"
MALFORMED = sorted((REPO / "tests" / "data" / "catalog").glob("*.yaml"))


def _headers(path: Path) -> dict[str, str]:
    return dict(re.findall(r"^# (replaces|expect-field|expect-line|expect-text): (.+?)\s*$", path.read_text(), re.M))


def _corpus_folder(tmp_path: Path, case: Path) -> tuple[Path, Path]:
    folder = tmp_path / "catalog"
    shutil.copytree(EXAMPLE, folder)
    destination = folder / _headers(case).get("replaces", case.name)
    shutil.copyfile(case, destination)
    return folder, destination


def test_the_example_catalog_loads() -> None:
    loaded = catalog.load_catalog(EXAMPLE)
    assert sorted(loaded.failure_modes) == ["sandbox/service-down", "sandbox/service-hung"]
    assert loaded.failure_modes["sandbox/service-down"].recovery_target == 30.0
    assert [p.name for p in loaded.people] == ["alice", "bob"]


def test_the_corpus_is_not_empty() -> None:
    assert len(MALFORMED) >= 15


@pytest.mark.parametrize("case", MALFORMED, ids=[p.name for p in MALFORMED])
def test_a_malformed_catalog_is_refused_naming_file_line_and_field(tmp_path: Path, case: Path) -> None:
    headers = _headers(case)
    folder, destination = _corpus_folder(tmp_path, case)
    with pytest.raises(errors.DefinitionErrors) as refused:
        catalog.load_catalog(folder)
    mine = [e for e in refused.value.errors if e.file == str(destination)]
    assert mine, f"no error names {destination.name}: {refused.value}"
    field = headers["expect-field"]
    matching = [e for e in mine if (e.field.startswith(field) if field == "(yaml)" else e.field == field)]
    assert matching, f"expected field {field}, got {[e.field for e in mine]}"
    error = matching[0]
    assert error.line == int(headers["expect-line"]), str(error)
    if "expect-text" in headers:
        assert headers["expect-text"] in error.message
    assert str(error).startswith(f"{destination}:{error.line}: {field}")


def test_refusing_a_catalog_changes_nothing_in_the_index(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    good = catalog.load_catalog(EXAMPLE)
    indexing.rebuild_index(archive, catalog=good)
    index = indexing.open_index(archive)
    before = index.dump()
    index.close()
    db = archive / indexing.INDEX_FILE
    stamp = db.stat().st_mtime_ns, db.read_bytes()
    folder, _ = _corpus_folder(tmp_path, MALFORMED[0])
    args = argparse.Namespace(home=str(tmp_path / "home"), archive=str(archive), catalog=str(folder))
    with pytest.raises(errors.DefinitionErrors):
        reporting.rebuild(args)
    assert (db.stat().st_mtime_ns, db.read_bytes()) == stamp
    index = indexing.open_index(archive)
    assert index.dump() == before
    assert [r["key"] for r in before["archive_failure_modes"]] == sorted(good.failure_modes)
    index.close()


def test_a_folder_without_a_roster_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "catalog"
    folder.mkdir()
    shutil.copyfile(EXAMPLE / "sandbox.yaml", folder / "sandbox.yaml")
    with pytest.raises(errors.DefinitionErrors, match=r"roster.yaml: \(file\): no roster"):
        catalog.load_catalog(folder)
