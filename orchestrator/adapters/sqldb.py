"""drill's databases (the journal, the archive index) over plain DB-API: one way to open them, two drivers.

SQLite (stdlib ``sqlite3``): WAL and ``synchronous=FULL`` for writers (a commit is durable when it
returns), a read-only mode that never writes (``mode=ro``, ``query_only``; an immutable read when the
folder cannot be written and no writer is mid-way), and writes that take the file's lock up front
(``BEGIN IMMEDIATE``) so writers queue on the busy timeout instead of failing on a lock upgrade.
PostgreSQL through psycopg 3 (imported only for a PostgreSQL URL), read-only by session default
when asked, rows locked with ``SELECT ... FOR UPDATE``. URLs are shown without their password.

The SQL itself is written once, with ``?`` placeholders; a ``Dialect`` holds the few differences
(placeholders, the row lock, column types, the driver's error classes). Connections are pooled, one
per thread at a time, so a ``Database`` may be shared between threads.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import urllib.parse
from collections.abc import Iterable, Iterator, Sequence, Sized
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from orchestrator import errors

Row = dict[str, Any]


# -- URLs ---------------------------------------------------------------------------------------------


def _backend(url: str) -> str:
    """``sqlite``, ``postgresql``, ... : the URL's scheme without its driver (``postgresql+psycopg``)."""
    scheme = url.partition("://")[0].partition("+")[0].lower()
    return "postgresql" if scheme == "postgres" else scheme


def display_url(url: str | Path) -> str:
    """The URL for messages: a path as is, a database URL without its password."""
    if isinstance(url, Path) or "://" not in url:
        return str(url)
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc
    user, at, host = netloc.rpartition("@")
    if at:
        netloc = f"{user.partition(':')[0]}@{host}"
    query = [
        (k, v)
        for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        if k.lower() not in ("password", "passfile")
    ]
    shown = f"{parts.scheme}://{netloc}{parts.path}"  # not urlunsplit: it drops sqlite:///'s empty host
    return f"{shown}?{urllib.parse.urlencode(query)}" if query else shown


def sqlite_path(url: str | Path, *, what: str, error: type[errors.DrillError]) -> Path | None:
    """The file of a SQLite database, or None for a server URL; ``error`` for an in-memory one."""
    if isinstance(url, Path) or "://" not in url:
        return Path(url).expanduser()
    if _backend(url) != "sqlite":
        return None
    # sqlite:///relative.db, sqlite:////absolute.db (the path after the third slash, as SQLAlchemy reads it)
    database = urllib.parse.unquote(urllib.parse.urlsplit(url).path[1:])
    if not database or database == ":memory:":
        raise error(f"{what} needs a file: {display_url(url)}")
    return Path(database).expanduser()


# -- dialects -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dialect:
    """What differs between the two databases, for the SQL written once with ``?`` placeholders."""

    name: str
    driver: ModuleType  # the DB-API module: its Error, IntegrityError, OperationalError, ... classes
    placeholder: str  # what ``?`` becomes
    for_update: str  # appended to a SELECT that locks its rows for the transaction
    double: str  # the column types of DDL
    bigint: str
    serial_key: str  # an auto-numbered primary key column's type and constraint

    def sql(self, statement: str) -> str:
        return statement if self.placeholder == "?" else statement.replace("?", self.placeholder)


SQLITE = Dialect(
    name="sqlite",
    driver=sqlite3,
    placeholder="?",
    for_update="",  # BEGIN IMMEDIATE has locked the whole file already
    double="REAL",
    bigint="INTEGER",
    serial_key="INTEGER PRIMARY KEY AUTOINCREMENT",
)


def _postgresql() -> Dialect:
    import psycopg

    return Dialect(
        name="postgresql",
        driver=psycopg,
        placeholder="%s",
        for_update=" FOR UPDATE",
        double="DOUBLE PRECISION",
        bigint="BIGINT",
        serial_key="BIGSERIAL PRIMARY KEY",
    )


# -- transactions -------------------------------------------------------------------------------------


class Transaction:
    """Statements inside one transaction; rows come back as dicts keyed by column name."""

    def __init__(self, conn: Any, dialect: Dialect) -> None:
        self._cursor = conn.cursor()
        self.dialect = dialect

    def execute(self, statement: str, params: Sequence[Any] = ()) -> int:
        """Runs one statement; the number of rows it changed."""
        self._cursor.execute(self.dialect.sql(statement), tuple(params))
        return int(self._cursor.rowcount)

    def executemany(self, statement: str, params: Iterable[Sequence[Any]]) -> None:
        self._cursor.executemany(self.dialect.sql(statement), [tuple(p) for p in params])

    def rows(self, statement: str, params: Sequence[Any] = ()) -> list[Row]:
        self._cursor.execute(self.dialect.sql(statement), tuple(params))
        names = [d[0] for d in self._cursor.description]
        return [dict(zip(names, values, strict=True)) for values in self._cursor.fetchall()]

    def first(self, statement: str, params: Sequence[Any] = ()) -> Row | None:
        found = self.rows(statement, params)
        return found[0] if found else None

    def scalar(self, statement: str, params: Sequence[Any] = ()) -> Any:
        """The first column of the first row, None when there is no row."""
        self._cursor.execute(self.dialect.sql(statement), tuple(params))
        row = self._cursor.fetchone()
        return None if row is None else row[0]

    def insert(self, table: str, row: Row, *, returning: str | None = None) -> Any:
        """One row (its keys name the columns; the others take their defaults); ``returning``'s value."""
        columns = ", ".join(row)
        marks = ", ".join("?" * len(row))
        statement = f"INSERT INTO {table} ({columns}) VALUES ({marks})"
        if returning is None:
            self.execute(statement, list(row.values()))
            return None
        return self.scalar(f"{statement} RETURNING {returning}", list(row.values()))

    def tables(self) -> set[str]:
        """The names of the tables in the database (the current schema on PostgreSQL)."""
        if self.dialect.name == "sqlite":
            query = "SELECT name FROM sqlite_master WHERE type = 'table'"
        else:
            query = "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        self._cursor.execute(query)
        return {str(r[0]) for r in self._cursor.fetchall()}


def marks(values: Sized) -> str:
    """``?, ?, ?``: one placeholder per value, for ``IN (...)``."""
    return ", ".join("?" * len(values))


# -- databases ----------------------------------------------------------------------------------------


class Database:
    """One database's connections: opened on demand, pooled, each used by one thread at a time."""

    def __init__(
        self,
        url: str | Path,
        path: Path | None,
        *,
        read_only: bool,
        busy_timeout_s: float,
        what: str,
        kind: str,
        missing: errors.DrillError,
        error: type[errors.DrillError],
        unopenable: type[errors.DrillError],
        max_connections: int = 10,
    ) -> None:
        """``path``: the SQLite file (``sqlite_path``), None for a server ``url``.

        ``what`` names the database in messages ("the journal"), ``kind`` in URL messages ("journal").
        ``missing`` is raised for a read-only open of a SQLite file that is not there, ``unopenable``
        when its folder cannot be made, ``error`` for a URL of no supported kind.
        """
        self.read_only = read_only
        self._busy_timeout_s = busy_timeout_s
        self._idle: list[Any] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_connections)
        self.path = path
        if self.path is not None:
            self.dialect = SQLITE
            if read_only and not self.path.is_file():
                raise missing
            if not read_only:
                try:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise unopenable(f"cannot open {what} at {self.path}: {exc}") from exc
            self._conninfo = ""
        else:
            if _backend(str(url)) != "postgresql":
                raise error(f"unsupported {kind} URL {display_url(url)}: use a file path, sqlite:/// or postgresql://")
            self.dialect = _postgresql()
            self._conninfo = "postgresql://" + str(url).partition("://")[2]  # libpq's URI, without the driver

    # -- connections -----------------------------------------------------------------------------------

    def _connect(self) -> Any:
        if self.dialect.name == "sqlite":
            return self._connect_sqlite()
        options: dict[str, Any] = {"connect_timeout": 10, "autocommit": False}
        if self.read_only:
            options["options"] = "-c default_transaction_read_only=on"
        return self.dialect.driver.connect(self._conninfo, **options)

    def _connect_sqlite(self) -> sqlite3.Connection:
        assert self.path is not None
        timeout = self._busy_timeout_s
        if not self.read_only:
            conn = sqlite3.connect(str(self.path), timeout=timeout, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
        else:
            uri = f"file:{urllib.parse.quote(str(self.path.resolve()))}?mode=ro"
            conn = sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None, check_same_thread=False)
            try:
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            except sqlite3.OperationalError:
                conn.close()
                # A WAL database in a folder we cannot write and no -shm file to share: read it as an
                # immutable file. Safe only when no writer is mid-way, which a -wal file would show.
                if Path(f"{self.path}-wal").exists():
                    raise
                conn = sqlite3.connect(
                    uri + "&immutable=1", uri=True, timeout=timeout, isolation_level=None, check_same_thread=False
                )
            conn.execute("PRAGMA query_only=ON")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    def _checkout(self) -> Any:
        if not self._slots.acquire(timeout=30.0):
            raise self.dialect.driver.OperationalError(f"no free connection to {self.dialect.name} after 30 s")
        try:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is not None and self.dialect.name == "postgresql":
                try:  # the server may have gone away since: a dead connection is replaced, as a ping would
                    conn.execute("SELECT 1")
                    conn.rollback()
                except self.dialect.driver.Error:
                    conn.close()
                    conn = None
            return conn if conn is not None else self._connect()
        except BaseException:
            self._slots.release()
            raise

    def _checkin(self, conn: Any, *, healthy: bool) -> None:
        try:
            if healthy:
                with self._lock:
                    if len(self._idle) < 4:
                        self._idle.append(conn)
                        return
            with contextlib.suppress(Exception):
                conn.close()
        finally:
            self._slots.release()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            with contextlib.suppress(Exception):
                conn.close()

    # -- transactions ----------------------------------------------------------------------------------

    def _begin(self, conn: Any, *, write: bool) -> None:
        if self.dialect.name == "sqlite":  # autocommit driver: the transaction is ours; a write locks up front
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        # psycopg opens the transaction with the first statement

    def _commit(self, conn: Any) -> None:
        if self.dialect.name == "sqlite":
            conn.execute("COMMIT")
        else:
            conn.commit()

    def _rollback(self, conn: Any) -> None:
        if self.dialect.name == "sqlite":
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        else:
            conn.rollback()

    @contextlib.contextmanager
    def transaction(self, *, write: bool) -> Iterator[Transaction]:
        """One transaction, committed when the block ends, rolled back when it raises."""
        conn = self._checkout()
        healthy = False
        try:
            self._begin(conn, write=write)
            try:
                yield Transaction(conn, self.dialect)
            except BaseException:
                with contextlib.suppress(Exception):
                    self._rollback(conn)
                healthy = not getattr(conn, "broken", False)
                raise
            self._commit(conn)
            healthy = True
        finally:
            self._checkin(conn, healthy=healthy)

    def disconnected(self, exc: BaseException) -> bool:
        """Whether a driver error means the database cannot be reached or opened (not a refused statement)."""
        driver = self.dialect.driver
        return (
            isinstance(exc, driver.OperationalError | driver.InterfaceError)
            or type(exc) is driver.DatabaseError  # SQLite: the file is not a database, or is damaged
        )


class SqlAdapter:
    """What the journal's and the archive index's adapters share: one ``Database``, its schema made
    ready on opening (``_prepare_schema``), driver errors translated (``_translate``), every write
    refused (``_refused``) when opened read-only."""

    read_only: bool
    _db: Database

    def _open(self, db: Database) -> None:
        self._db = db
        try:
            with self._translate("open"):
                self._prepare_schema()
        except BaseException:
            db.close()
            raise

    def close(self) -> None:
        self._db.close()

    @property
    def dialect(self) -> str:
        return self._db.dialect.name

    def _translate(self, what: str) -> contextlib.AbstractContextManager[None]:
        raise NotImplementedError

    def _prepare_schema(self) -> None:
        raise NotImplementedError

    def _refused(self, what: str) -> errors.DrillError:
        raise NotImplementedError

    @contextlib.contextmanager
    def _write(self, what: str) -> Iterator[Transaction]:
        if self.read_only:
            raise self._refused(what)
        with self._translate(what), self._db.transaction(write=True) as tx:
            yield tx

    @contextlib.contextmanager
    def _read(self, what: str) -> Iterator[Transaction]:
        with self._translate(what), self._db.transaction(write=False) as tx:
            yield tx


def first_line(exc: BaseException) -> str:
    """The driver's message's first line (never the SQL or its parameters: they may hold user data)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
