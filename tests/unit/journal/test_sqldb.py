"""The database URLs drill accepts: shown without a password, SQLite files found as SQLAlchemy's URLs named them."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator import errors
from orchestrator.adapters import sqldb


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("sqlite:///rel.db", "sqlite:///rel.db"),
        ("sqlite:////abs/j.db", "sqlite:////abs/j.db"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("postgres://h:5432/db", "postgres://h:5432/db"),
        (
            "postgresql+psycopg://u:pw@h:5/db?password=pw&sslmode=require",
            "postgresql+psycopg://u@h:5/db?sslmode=require",
        ),
        ("postgresql://u:pw@[::1]:5432/db?passfile=/x", "postgresql://u@[::1]:5432/db"),
        ("/a/journal.db", "/a/journal.db"),
    ],
)
def test_a_url_is_shown_without_its_password(url: str, shown: str) -> None:
    assert sqldb.display_url(url) == shown


def test_sqlite_urls_name_their_file() -> None:
    def path(url: str) -> Path | None:
        return sqldb.sqlite_path(url, what="a journal", error=errors.JournalError)

    assert path("sqlite:///rel.db") == Path("rel.db")
    assert path("sqlite:////abs/a%20b.db") == Path("/abs/a b.db")
    assert path("sqlite+pysqlite:////abs/j.db") == Path("/abs/j.db")
    assert path("postgresql://h/db") is None
    for memory in ("sqlite://", "sqlite:///:memory:"):
        with pytest.raises(errors.JournalError, match="needs a file"):
            path(memory)
