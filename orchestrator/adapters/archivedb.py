"""The archive index's database, in plain SQL over DB-API: SQLite (``<archive>/index.db``) or PostgreSQL.

The index is derived data: everything in it can be rebuilt from the archive's files
(``orchestrator.archive.indexing.rebuild_index``). It lives in the same kind of store as the journal,
opened the same way (``adapters.sqldb``): a SQLite file next to the runs it indexes by default (WAL,
``synchronous=FULL``, writes under ``BEGIN IMMEDIATE``), or the PostgreSQL database at
``$DRILL_INDEX_URL`` that a team shares (its tables are prefixed ``archive_`` so it may be the
journal's own database).

Every write is one transaction: a run and all its rows appear together or not at all, and a rebuild
replaces the whole index at once (readers see the old index or the new one, never a mix). Rows cross
this boundary as plain dicts keyed by column name; ``orchestrator.archive.indexing`` decides what
they mean. Driver errors become ``errors.ReportError`` here, with the URL and without SQL.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from orchestrator import errors
from orchestrator.adapters import sqldb

Row = dict[str, Any]

SCHEMA_VERSION = 1
_PG_SCHEMA_LOCK = 0x6172636876  # "archv": serializes schema creation between processes on PostgreSQL

RUNS = "archive_runs"
PARTICIPANTS = "archive_participants"
TIMINGS = "archive_timings"
FILES = "archive_files"
FAILURE_MODES = "archive_failure_modes"
PEOPLE = "archive_people"
_VERSION = "archive_index_version"


def _schema(d: sqldb.Dialect) -> list[str]:
    """The index's DDL (every statement safe to repeat)."""
    child = f"run_id TEXT NOT NULL REFERENCES {RUNS} (run_id) ON DELETE CASCADE, name TEXT NOT NULL"
    return [
        f"""CREATE TABLE IF NOT EXISTS {RUNS} (
            run_id TEXT NOT NULL PRIMARY KEY, drill TEXT NOT NULL, drill_path TEXT NOT NULL, mode TEXT NOT NULL,
            failure_mode TEXT, target TEXT NOT NULL, state TEXT NOT NULL, outcome TEXT, abort_reason TEXT,
            started_at TEXT, started_s {d.double}, ended_at TEXT, duration_s {d.double},
            hints_used INTEGER NOT NULL, participants INTEGER NOT NULL, policies INTEGER NOT NULL,
            policies_restored INTEGER NOT NULL, manifest_sha256 TEXT NOT NULL)""",
        f"CREATE INDEX IF NOT EXISTS archive_runs_started ON {RUNS} (started_s)",
        f"CREATE INDEX IF NOT EXISTS archive_runs_failure_mode ON {RUNS} (failure_mode, started_s)",
        f"""CREATE TABLE IF NOT EXISTS {PARTICIPANTS} (
            {child}, role TEXT NOT NULL, hints INTEGER NOT NULL, acknowledge_s {d.double},
            diagnose_s {d.double}, mitigated_s {d.double}, resolve_s {d.double}, PRIMARY KEY (run_id, name))""",
        f"CREATE INDEX IF NOT EXISTS archive_participants_name ON {PARTICIPANTS} (name)",
        f"""CREATE TABLE IF NOT EXISTS {TIMINGS} (
            {child}, seconds {d.double}, censored INTEGER NOT NULL, lower_bound_s {d.double},
            expected_s {d.double}, met INTEGER, PRIMARY KEY (run_id, name))""",
        f"""CREATE TABLE IF NOT EXISTS {FILES} (
            {child}, sha256 TEXT NOT NULL, bytes {d.bigint} NOT NULL, PRIMARY KEY (run_id, name))""",
        # key: service/id, what a drill's spec.failureMode names
        f"""CREATE TABLE IF NOT EXISTS {FAILURE_MODES} (
            key TEXT NOT NULL PRIMARY KEY, service TEXT NOT NULL, id TEXT NOT NULL, severity TEXT NOT NULL,
            detection TEXT NOT NULL, automation_kind TEXT NOT NULL, automation_name TEXT, verified_by_drill TEXT,
            verified_by_experiment TEXT, runbook TEXT NOT NULL, recovery_target_s {d.double} NOT NULL,
            source TEXT NOT NULL)""",
        # roles: comma-separated, sorted
        f"""CREATE TABLE IF NOT EXISTS {PEOPLE} (
            name TEXT NOT NULL PRIMARY KEY, team TEXT NOT NULL, roles TEXT NOT NULL)""",
        f"CREATE TABLE IF NOT EXISTS {_VERSION} (version INTEGER NOT NULL)",
    ]


_COLUMNS: dict[str, tuple[str, ...]] = {
    RUNS: (
        "run_id", "drill", "drill_path", "mode", "failure_mode", "target", "state", "outcome", "abort_reason",
        "started_at", "started_s", "ended_at", "duration_s", "hints_used", "participants", "policies",
        "policies_restored", "manifest_sha256",
    ),
    PARTICIPANTS: (
        "run_id", "name", "role", "hints", "acknowledge_s", "diagnose_s", "mitigated_s", "resolve_s",
    ),
    TIMINGS: ("run_id", "name", "seconds", "censored", "lower_bound_s", "expected_s", "met"),
    FILES: ("run_id", "name", "sha256", "bytes"),
    FAILURE_MODES: (
        "key", "service", "id", "severity", "detection", "automation_kind", "automation_name", "verified_by_drill",
        "verified_by_experiment", "runbook", "recovery_target_s", "source",
    ),
    PEOPLE: ("name", "team", "roles"),
}  # fmt: skip
_RUN_TABLES = (PARTICIPANTS, TIMINGS, FILES)  # children first: deleted before, inserted after the run
_ALL_DATA = (*_RUN_TABLES, RUNS, FAILURE_MODES, PEOPLE)
_ORDER: dict[str, tuple[str, ...]] = {
    RUNS: ("run_id",),
    PARTICIPANTS: ("run_id", "name"),
    TIMINGS: ("run_id", "name"),
    FILES: ("run_id", "name"),
    FAILURE_MODES: ("key",),
    PEOPLE: ("name",),
}
_CHUNK = 5_000  # rows per executemany: bounded memory in the driver, few round trips


def sqlite_path(url: str | Path) -> Path | None:
    """The file of a SQLite index, or None for a server URL."""
    return sqldb.sqlite_path(url, what="an archive index", error=errors.ReportError)


def _select(table: str) -> str:
    return f"SELECT {', '.join(_COLUMNS[table])} FROM {table}"


class IndexDb(sqldb.SqlAdapter):
    """One archive index database."""

    def __init__(self, url: str | Path, *, read_only: bool = False, busy_timeout_s: float = 30.0) -> None:
        self.url = sqldb.display_url(url)
        self.read_only = read_only
        path = sqlite_path(url)
        database = sqldb.Database(
            url,
            path,
            read_only=read_only,
            busy_timeout_s=busy_timeout_s,
            what="the archive index",
            kind="archive index",
            missing=errors.ReportError(f"no archive index at {path}; build it with `drill report rebuild`"),
            error=errors.ReportError,
            unopenable=errors.ReportError,
            max_connections=64 if path is not None else 6,
        )
        self._open(database)

    # -- transactions and errors -------------------------------------------------------------------

    @contextlib.contextmanager
    def _translate(self, what: str) -> Iterator[None]:
        try:
            yield
        except errors.DrillError:
            raise
        except self._db.dialect.driver.Error as exc:
            raise errors.ReportError(f"cannot {what} the archive index at {self.url}: {sqldb.first_line(exc)}") from exc
        except OSError as exc:
            raise errors.ReportError(f"cannot {what} the archive index at {self.url}: {exc}") from exc

    def _refused(self, what: str) -> errors.DrillError:
        return errors.ReportError(f"the archive index at {self.url} was opened read-only; cannot {what}")

    def _prepare_schema(self) -> None:
        if self.read_only:
            with self._read("open") as tx:
                self._check_version(self._version(tx))
            return
        with self._write("open") as tx:
            if self.dialect == "postgresql":
                tx.execute("SELECT pg_advisory_xact_lock(?)", [_PG_SCHEMA_LOCK])
            version = self._version(tx)
            self._check_version(version)
            if version == 0:
                for statement in _schema(tx.dialect):
                    tx.execute(statement)
                tx.execute(f"INSERT INTO {_VERSION} (version) VALUES (?)", [SCHEMA_VERSION])

    @staticmethod
    def _version(tx: sqldb.Transaction) -> int:
        if _VERSION not in tx.tables():
            return 0
        return int(tx.scalar(f"SELECT max(version) FROM {_VERSION}") or 0)

    def _check_version(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise errors.ReportError(
                f"the archive index at {self.url} has layout {version}, newer than this drill's "
                f"({SCHEMA_VERSION}); upgrade drill, or point it at another index"
            )
        if version == 0 and self.read_only:
            raise errors.ReportError(f"the archive index at {self.url} is empty; build it with `drill report rebuild`")

    # -- writes ------------------------------------------------------------------------------------

    @staticmethod
    def _insert(tx: sqldb.Transaction, table: str, rows: Sequence[Row]) -> None:
        columns = _COLUMNS[table]
        statement = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({sqldb.marks(columns)})"
        for start in range(0, len(rows), _CHUNK):
            tx.executemany(statement, [[row.get(c) for c in columns] for row in rows[start : start + _CHUNK]])

    def put_run(
        self, run: Row, *, participant_rows: Sequence[Row], timing_rows: Sequence[Row], file_rows: Sequence[Row]
    ) -> None:
        """One run and its rows, replacing what the index held for it, in one transaction."""
        run_id = run["run_id"]
        with self._write("index a run in") as tx:
            for table in (*_RUN_TABLES, RUNS):
                tx.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])
            self._insert(tx, RUNS, [run])
            self._insert(tx, PARTICIPANTS, participant_rows)
            self._insert(tx, TIMINGS, timing_rows)
            self._insert(tx, FILES, file_rows)

    def put_catalog(self, *, failure_mode_rows: Sequence[Row], people_rows: Sequence[Row]) -> None:
        """The catalog and roster, replacing the previous ones, in one transaction."""
        with self._write("index the catalog in") as tx:
            tx.execute(f"DELETE FROM {FAILURE_MODES}")
            tx.execute(f"DELETE FROM {PEOPLE}")
            self._insert(tx, FAILURE_MODES, failure_mode_rows)
            self._insert(tx, PEOPLE, people_rows)

    def replace_all(self, tables: Mapping[str, Sequence[Row]]) -> None:
        """Replace the tables named in ``tables`` at once (a rebuild): readers see the old rows or the new.

        The run tables (``archive_runs`` and its children) are replaced together or not at all.
        """
        names = set(tables)
        run_tables = {RUNS, *_RUN_TABLES}
        if names & run_tables and not run_tables <= names:
            raise ValueError("the run tables are replaced together")
        with self._write("rebuild") as tx:
            for table in _ALL_DATA:  # children before the runs they refer to
                if table in names:
                    tx.execute(f"DELETE FROM {table}")
            for table in (RUNS, *_RUN_TABLES, FAILURE_MODES, PEOPLE):
                if table in names:
                    self._insert(tx, table, tables[table])

    # -- reads -------------------------------------------------------------------------------------

    def list_runs(
        self, *, limit: int | None = None, failure_mode: str | None = None, person: str | None = None
    ) -> list[Row]:
        """Runs newest first, optionally of one failure mode or with one participant."""
        where: list[str] = []
        params: list[Any] = []
        if failure_mode is not None:
            where.append("failure_mode = ?")
            params.append(failure_mode)
        if person is not None:
            where.append(f"run_id IN (SELECT run_id FROM {PARTICIPANTS} WHERE name = ?)")
            params.append(person)
        query = _select(RUNS)
        if where:
            query += " WHERE " + " AND ".join(where)
        query += " ORDER BY started_s DESC, run_id DESC"
        if limit is not None:
            query += " LIMIT ?"
            params.append(limit)
        with self._read("read") as tx:
            return tx.rows(query, params)

    def run_ids(self, prefix: str) -> list[str]:
        """At most two run ids starting with ``prefix`` ('%' and '_' in it are plain characters)."""
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        with self._read("read") as tx:
            found = tx.rows(f"SELECT run_id FROM {RUNS} WHERE run_id LIKE ? ESCAPE '\\' LIMIT 2", [f"{escaped}%"])
            return [str(r["run_id"]) for r in found]

    def rows(self, table_name: str, *, run_id: str | None = None) -> list[Row]:
        """Every row of one table (of one run), in a stable order."""
        order = ", ".join(_ORDER[table_name])
        with self._read("read") as tx:
            if run_id is None:
                return tx.rows(f"{_select(table_name)} ORDER BY {order}")
            return tx.rows(f"{_select(table_name)} WHERE run_id = ? ORDER BY {order}", [run_id])

    def dump(self) -> dict[str, list[Row]]:
        """The whole index, table by table in a stable order: what two indexes are compared by."""
        return {name: self.rows(name) for name in _ORDER}

    def counts(self) -> dict[str, int]:
        with self._read("count") as tx:
            return {name: int(tx.scalar(f"SELECT count(*) FROM {name}")) for name in _ORDER}


TABLES = tuple(_ORDER)
"""The index's data tables, by name (``archive_runs``, ``archive_participants``, ...)."""
