"""Journal fixtures: a fresh database per test, on SQLite and on the test PostgreSQL server.

The server is the one ``tests/pg.sh`` started for the test script (``DRILL_TEST_PG_URL``), or,
when that is not set, one this session starts and stops itself, so ``pytest tests/unit/journal``
works alone. A missing PostgreSQL fails the tests with the reason; it never skips them.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.conftest import REPO

PG_SCRIPT = REPO / "tests" / "pg.sh"


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """The URL of a running PostgreSQL server (its ``postgres`` database)."""
    given = os.environ.get("DRILL_TEST_PG_URL")
    if given:
        yield given
        return
    folder = tempfile.mkdtemp(prefix="drill-test-pg-", dir="/tmp")
    started = subprocess.run(["bash", str(PG_SCRIPT), "start", folder], capture_output=True, text=True, check=False)
    if started.returncode != 0:
        pytest.fail(
            f"cannot start the test PostgreSQL (tests/pg.sh start; install it with tests/install-deps.sh):\n"
            f"{started.stdout}{started.stderr}",
            pytrace=False,
        )
    try:
        yield started.stdout.strip()
    finally:
        subprocess.run(["bash", str(PG_SCRIPT), "stop", folder], check=False, capture_output=True)


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@pytest.fixture
def pg_url(pg_server_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test; dropped after it."""
    name = f"drill_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq(pg_server_url), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    head, _, _ = pg_server_url.rpartition("/")
    yield f"{head}/{name}"
    with psycopg.connect(_libpq(pg_server_url), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def journal_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a fresh journal lives: a SQLite file, or a PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "journal.db")
    url: str = request.getfixturevalue("pg_url")
    return url
