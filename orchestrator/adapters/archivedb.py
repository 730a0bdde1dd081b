"""The archive index's database, through SQLAlchemy Core: SQLite (``<archive>/index.db``) or PostgreSQL.

The index is derived data: everything in it can be rebuilt from the archive's files
(``orchestrator.archive.indexing.rebuild_index``). It lives in the same kind of store as the journal:
a SQLite file next to the runs it indexes by default (WAL, ``synchronous=FULL``, writes under
``BEGIN IMMEDIATE``), or the PostgreSQL database at ``$DRILL_INDEX_URL`` that a team shares (its
tables are prefixed ``archive_`` so it may be the journal's own database).

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

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from orchestrator import errors
from orchestrator.adapters import sqlengines

Row = dict[str, Any]

SCHEMA_VERSION = 1
_PG_SCHEMA_LOCK = 0x6172636876  # "archv": serializes schema creation between processes on PostgreSQL

metadata = sa.MetaData()

runs = sa.Table(
    "archive_runs",
    metadata,
    sa.Column("run_id", sa.Text, primary_key=True),
    sa.Column("drill", sa.Text, nullable=False),
    sa.Column("drill_path", sa.Text, nullable=False),
    sa.Column("mode", sa.Text, nullable=False),
    sa.Column("failure_mode", sa.Text),
    sa.Column("target", sa.Text, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("outcome", sa.Text),
    sa.Column("abort_reason", sa.Text),
    sa.Column("started_at", sa.Text),
    sa.Column("started_s", sa.Double),
    sa.Column("ended_at", sa.Text),
    sa.Column("duration_s", sa.Double),
    sa.Column("hints_used", sa.Integer, nullable=False),
    sa.Column("participants", sa.Integer, nullable=False),
    sa.Column("policies", sa.Integer, nullable=False),
    sa.Column("policies_restored", sa.Integer, nullable=False),
    sa.Column("manifest_sha256", sa.Text, nullable=False),
    sa.Index("archive_runs_started", "started_s"),
    sa.Index("archive_runs_failure_mode", "failure_mode", "started_s"),
)
participants = sa.Table(
    "archive_participants",
    metadata,
    sa.Column("run_id", sa.Text, sa.ForeignKey("archive_runs.run_id", ondelete="CASCADE"), primary_key=True),
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("role", sa.Text, nullable=False),
    sa.Column("hints", sa.Integer, nullable=False),
    sa.Column("acknowledge_s", sa.Double),
    sa.Column("diagnose_s", sa.Double),
    sa.Column("mitigated_s", sa.Double),
    sa.Column("resolve_s", sa.Double),
    sa.Index("archive_participants_name", "name"),
)
timings = sa.Table(
    "archive_timings",
    metadata,
    sa.Column("run_id", sa.Text, sa.ForeignKey("archive_runs.run_id", ondelete="CASCADE"), primary_key=True),
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("seconds", sa.Double),
    sa.Column("censored", sa.Integer, nullable=False),
    sa.Column("lower_bound_s", sa.Double),
    sa.Column("expected_s", sa.Double),
    sa.Column("met", sa.Integer),
)
files = sa.Table(
    "archive_files",
    metadata,
    sa.Column("run_id", sa.Text, sa.ForeignKey("archive_runs.run_id", ondelete="CASCADE"), primary_key=True),
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("sha256", sa.Text, nullable=False),
    sa.Column("bytes", sa.BigInteger, nullable=False),
)
failure_modes = sa.Table(
    "archive_failure_modes",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),  # service/id, what a drill's spec.failureMode names
    sa.Column("service", sa.Text, nullable=False),
    sa.Column("id", sa.Text, nullable=False),
    sa.Column("severity", sa.Text, nullable=False),
    sa.Column("detection", sa.Text, nullable=False),
    sa.Column("automation_kind", sa.Text, nullable=False),
    sa.Column("automation_name", sa.Text),
    sa.Column("verified_by_drill", sa.Text),
    sa.Column("verified_by_experiment", sa.Text),
    sa.Column("runbook", sa.Text, nullable=False),
    sa.Column("recovery_target_s", sa.Double, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
)
people = sa.Table(
    "archive_people",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("team", sa.Text, nullable=False),
    sa.Column("roles", sa.Text, nullable=False),  # comma-separated, sorted
)
schema_version = sa.Table("archive_index_version", metadata, sa.Column("version", sa.Integer, nullable=False))

_RUN_TABLES = (participants, timings, files)  # children first: deleted before, inserted after the run
_ALL_DATA = (*_RUN_TABLES, runs, failure_modes, people)
_ORDER: dict[str, tuple[str, ...]] = {
    runs.name: ("run_id",),
    participants.name: ("run_id", "name"),
    timings.name: ("run_id", "name"),
    files.name: ("run_id", "name"),
    failure_modes.name: ("key",),
    people.name: ("name",),
}
_CHUNK = 5_000  # rows per executemany: bounded memory in the driver, few round trips


def sqlite_path(url: str | Path) -> Path | None:
    """The file of a SQLite index, or None for a server URL."""
    return sqlengines.sqlite_path(url, what="an archive index", error=errors.ReportError)


class IndexDb:
    """One archive index database."""

    def __init__(self, url: str | Path, *, read_only: bool = False, busy_timeout_s: float = 30.0) -> None:
        self.url = sqlengines.display_url(url)
        self.read_only = read_only
        path = sqlite_path(url)
        if path is not None:
            self._engine = self._sqlite_engine(path, busy_timeout_s)
        else:
            self._engine = self._postgresql_engine(str(url))
        try:
            with self._translate("open"):
                self._prepare_schema()
        except BaseException:
            self._engine.dispose()
            raise

    def _sqlite_engine(self, path: Path, busy_timeout_s: float) -> sa.Engine:
        return sqlengines.sqlite_engine(
            path,
            read_only=self.read_only,
            busy_timeout_s=busy_timeout_s,
            what="the archive index",
            missing=errors.ReportError(f"no archive index at {path}; build it with `drill report rebuild`"),
            unopenable=errors.ReportError,
        )

    def _postgresql_engine(self, url: str) -> sa.Engine:
        return sqlengines.postgresql_engine(
            url, read_only=self.read_only, what="archive index", error=errors.ReportError, max_overflow=4
        )

    def close(self) -> None:
        self._engine.dispose()

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    # -- transactions and errors -------------------------------------------------------------------

    @contextlib.contextmanager
    def _translate(self, what: str) -> Iterator[None]:
        try:
            yield
        except errors.DrillError:
            raise
        except sa_exc.SQLAlchemyError as exc:
            raise errors.ReportError(f"cannot {what} the archive index at {self.url}: {_first_line(exc)}") from exc
        except OSError as exc:
            raise errors.ReportError(f"cannot {what} the archive index at {self.url}: {exc}") from exc

    @contextlib.contextmanager
    def _write(self, what: str) -> Iterator[sa.Connection]:
        if self.read_only:
            raise errors.ReportError(f"the archive index at {self.url} was opened read-only; cannot {what}")
        with self._translate(what), sqlengines.transaction(self._engine, write=True) as conn:
            yield conn

    @contextlib.contextmanager
    def _read(self, what: str) -> Iterator[sa.Connection]:
        with self._translate(what), sqlengines.transaction(self._engine, write=False) as conn:
            yield conn

    def _prepare_schema(self) -> None:
        if self.read_only:
            with self._read("open") as conn:
                self._check_version(self._version(conn))
            return
        with self._write("open") as conn:
            if self.dialect == "postgresql":
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_SCHEMA_LOCK)))
            version = self._version(conn)
            self._check_version(version)
            if version == 0:
                metadata.create_all(conn)
                conn.execute(schema_version.insert().values(version=SCHEMA_VERSION))

    @staticmethod
    def _version(conn: sa.Connection) -> int:
        if not sa.inspect(conn).has_table(schema_version.name):
            return 0
        return int(conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar_one() or 0)

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
    def _insert(conn: sa.Connection, table: sa.Table, rows: Sequence[Row]) -> None:
        for start in range(0, len(rows), _CHUNK):
            conn.execute(table.insert(), list(rows[start : start + _CHUNK]))

    def put_run(
        self, run: Row, *, participant_rows: Sequence[Row], timing_rows: Sequence[Row], file_rows: Sequence[Row]
    ) -> None:
        """One run and its rows, replacing what the index held for it, in one transaction."""
        run_id = run["run_id"]
        with self._write("index a run in") as conn:
            for table in _RUN_TABLES:
                conn.execute(table.delete().where(table.c.run_id == run_id))
            conn.execute(runs.delete().where(runs.c.run_id == run_id))
            conn.execute(runs.insert().values(run))
            self._insert(conn, participants, participant_rows)
            self._insert(conn, timings, timing_rows)
            self._insert(conn, files, file_rows)

    def put_catalog(self, *, failure_mode_rows: Sequence[Row], people_rows: Sequence[Row]) -> None:
        """The catalog and roster, replacing the previous ones, in one transaction."""
        with self._write("index the catalog in") as conn:
            conn.execute(failure_modes.delete())
            conn.execute(people.delete())
            self._insert(conn, failure_modes, failure_mode_rows)
            self._insert(conn, people, people_rows)

    def replace_all(self, tables: Mapping[str, Sequence[Row]]) -> None:
        """Replace the tables named in ``tables`` at once (a rebuild): readers see the old rows or the new.

        The run tables (``archive_runs`` and its children) are replaced together or not at all.
        """
        names = set(tables)
        run_tables = {runs.name, *(t.name for t in _RUN_TABLES)}
        if names & run_tables and not run_tables <= names:
            raise ValueError("the run tables are replaced together")
        with self._write("rebuild") as conn:
            for table in _ALL_DATA:  # children before the runs they refer to
                if table.name in names:
                    conn.execute(table.delete())
            for table in (runs, *_RUN_TABLES, failure_modes, people):
                if table.name in names:
                    self._insert(conn, table, tables[table.name])

    # -- reads -------------------------------------------------------------------------------------

    def list_runs(
        self, *, limit: int | None = None, failure_mode: str | None = None, person: str | None = None
    ) -> list[Row]:
        """Runs newest first, optionally of one failure mode or with one participant."""
        query = sa.select(runs).order_by(runs.c.started_s.desc(), runs.c.run_id.desc())
        if failure_mode is not None:
            query = query.where(runs.c.failure_mode == failure_mode)
        if person is not None:
            mine = sa.select(participants.c.run_id).where(participants.c.name == person)
            query = query.where(runs.c.run_id.in_(mine))
        if limit is not None:
            query = query.limit(limit)
        with self._read("read") as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def run_ids(self, prefix: str) -> list[str]:
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = sa.select(runs.c.run_id).where(runs.c.run_id.like(f"{escaped}%", escape="\\")).limit(2)
        with self._read("read") as conn:
            return [str(r[0]) for r in conn.execute(query)]

    def rows(self, table_name: str, *, run_id: str | None = None) -> list[Row]:
        """Every row of one table (of one run), in a stable order."""
        table = metadata.tables[table_name]
        query = sa.select(table).order_by(*(table.c[name] for name in _ORDER[table_name]))
        if run_id is not None:
            query = query.where(table.c.run_id == run_id)
        with self._read("read") as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def dump(self) -> dict[str, list[Row]]:
        """The whole index, table by table in a stable order: what two indexes are compared by."""
        return {name: self.rows(name) for name in _ORDER}

    def counts(self) -> dict[str, int]:
        with self._read("count") as conn:
            return {
                name: int(conn.execute(sa.select(sa.func.count()).select_from(metadata.tables[name])).scalar_one())
                for name in _ORDER
            }


TABLES = tuple(_ORDER)
"""The index's data tables, by name (``archive_runs``, ``archive_participants``, ...)."""


_first_line = sqlengines.first_line
