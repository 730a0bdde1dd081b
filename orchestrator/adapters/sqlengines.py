"""SQLAlchemy engines for drill's databases (the journal, the archive index): one way to open them.

SQLite: WAL and ``synchronous=FULL`` for writers (a commit is durable when it returns), a read-only
mode that never writes (``mode=ro``, ``query_only``; an immutable read when the folder cannot be
written and no writer is mid-way), and writes that take the file's lock up front (``BEGIN
IMMEDIATE`` for connections with the ``drill_write`` execution option) so writers queue on the busy
timeout instead of failing on a lock upgrade. PostgreSQL through psycopg, read-only by session
default when asked. URLs are shown without their password.
"""

from __future__ import annotations

import contextlib
import sqlite3
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event as sa_event

from orchestrator import errors


def display_url(url: str | Path) -> str:
    """The URL for messages: a path as is, a database URL without its password."""
    if isinstance(url, Path) or "://" not in url:
        return str(url)
    parsed = sa.make_url(url)
    query = {k: v for k, v in parsed.query.items() if k.lower() not in ("password", "passfile")}
    bare = sa.URL.create(
        parsed.drivername,
        username=parsed.username,
        host=parsed.host,
        port=parsed.port,
        database=parsed.database,
        query=query,
    )
    return bare.render_as_string(hide_password=False)


def sqlite_path(url: str | Path, *, what: str, error: type[errors.DrillError]) -> Path | None:
    """The file of a SQLite database, or None for a server URL; ``error`` for an in-memory one."""
    if isinstance(url, Path) or "://" not in url:
        return Path(url).expanduser()
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    if not parsed.database or parsed.database == ":memory:":
        raise error(f"{what} needs a file: {display_url(url)}")
    return Path(parsed.database).expanduser()


def sqlite_engine(
    path: Path,
    *,
    read_only: bool,
    busy_timeout_s: float,
    what: str,
    missing: errors.DrillError,
    unopenable: type[errors.DrillError],
) -> sa.Engine:
    """An engine on one SQLite file; ``missing`` is raised for a read-only open of a file that is not there."""
    if read_only and not path.is_file():
        raise missing
    if not read_only:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise unopenable(f"cannot open {what} at {path}: {exc}") from exc

    def connect() -> sqlite3.Connection:
        if not read_only:
            return sqlite3.connect(str(path), timeout=busy_timeout_s, isolation_level=None, check_same_thread=False)
        uri = f"file:{urllib.parse.quote(str(path.resolve()))}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.OperationalError:
            conn.close()
            # A WAL database in a folder we cannot write and no -shm file to share: read it as an
            # immutable file. Safe only when no writer is mid-way, which a -wal file would show.
            if Path(f"{path}-wal").exists():
                raise
            return sqlite3.connect(
                uri + "&immutable=1", uri=True, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
            )

    # A creator with no path in the URL would get SQLAlchemy's in-memory pool (SingletonThreadPool: five
    # connections, closing those of other threads beyond them: a crash once restores fan out to threads).
    # A file database wants a queue of connections, each used by one thread at a time.
    engine = sa.create_engine(
        "sqlite+pysqlite://", creator=connect, poolclass=sa.pool.QueuePool, pool_size=4, max_overflow=60
    )

    @sa_event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        if read_only:
            cursor.execute("PRAGMA query_only=ON")
        else:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @sa_event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        # The driver runs in autocommit; a write takes the file's write lock up front.
        immediate = conn.get_execution_options().get("drill_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def postgresql_engine(
    url: str, *, read_only: bool, what: str, error: type[errors.DrillError], max_overflow: int = 8
) -> sa.Engine:
    """An engine on a PostgreSQL URL (psycopg); ``error`` for a URL of another kind."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise error(f"unsupported {what} URL {display_url(url)}: use a file path, sqlite:/// or postgresql://")
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    connect_args: dict[str, Any] = {"connect_timeout": 10}
    if read_only:
        connect_args["options"] = "-c default_transaction_read_only=on"
    return sa.create_engine(
        parsed, pool_pre_ping=True, pool_size=2, max_overflow=max_overflow, connect_args=connect_args
    )


@contextlib.contextmanager
def transaction(engine: sa.Engine, *, write: bool) -> Iterator[sa.Connection]:
    """One transaction, committed when the block ends; a write takes SQLite's lock up front (``drill_write``)."""
    with engine.connect() as conn:
        if write:
            conn.execution_options(drill_write=True)
        with conn.begin():
            yield conn


def first_line(exc: BaseException) -> str:
    """The driver's message without SQLAlchemy's SQL echo and parameters (they may hold user data)."""
    original = getattr(exc, "orig", None)
    text = str(original if original is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
