"""The index lives where the team's journal lives, unless told otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.archive import indexing


def test_index_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DRILL_INDEX_URL", raising=False)
    monkeypatch.delenv("DRILL_JOURNAL_URL", raising=False)
    assert indexing.index_url(tmp_path) == tmp_path / indexing.INDEX_FILE
    monkeypatch.setenv("DRILL_JOURNAL_URL", str(tmp_path / "journal.db"))  # a SQLite journal: the archive keeps its own
    assert indexing.index_url(tmp_path) == tmp_path / indexing.INDEX_FILE
    monkeypatch.setenv("DRILL_JOURNAL_URL", "postgresql://drill@127.0.0.1/team")
    assert indexing.index_url(tmp_path) == "postgresql://drill@127.0.0.1/team"
    monkeypatch.setenv("DRILL_INDEX_URL", "postgresql://drill@127.0.0.1/reports")
    assert indexing.index_url(tmp_path) == "postgresql://drill@127.0.0.1/reports"
