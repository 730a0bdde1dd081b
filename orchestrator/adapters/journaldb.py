"""The journal's database, through SQLAlchemy Core: SQLite (one file, the default) or PostgreSQL (a team's).

Everything that knows SQL lives here (the per-item suspension statements in ``journalsuspensions``):
the tables, one engine per URL, the schema version and its migrations, the dialect differences, and
the translation of driver errors into ``orchestrator.errors`` (decided here: a read-only database
is ``JournalReadOnlyError``, a file that is not a database is ``JournalUnavailableError``). Rows
cross this boundary as plain dicts keyed by column name; ``orchestrator.journal.store`` turns them
into records.

Concurrency. Every write is one transaction (a batch of suspension writes too: one commit, one
fsync, for all its items). On SQLite it starts with ``BEGIN IMMEDIATE`` (the whole file is locked
for writing; other writers wait up to ``busy_timeout_s``), in WAL mode with ``synchronous=FULL`` so
a commit is durable before the call returns. On PostgreSQL the run's row is
locked (``SELECT ... FOR UPDATE``) before any fenced write, so fencing checks and compare-and-set
cannot interleave; ``take_over`` is a single conditional ``UPDATE``; target locks use
``INSERT ... ON CONFLICT DO NOTHING`` and then lock the existing row.

Schema versions. ``schema_version`` holds one row. Version 1 is the first SQLite layout (no such
table); opening it for writing migrates in place (new columns with defaults: existing runs get
token 1 and owner ''; existing commands count as consumed, so an upgraded run never replays them).
A journal newer than this code is refused. A read-only open never migrates: it reads a version 1
journal as it is, filling the missing columns with their defaults.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql as sa_postgresql
from sqlalchemy.dialects import sqlite as sa_sqlite

from orchestrator import errors
from orchestrator.adapters import journalsuspensions, sqlengines

Row = dict[str, Any]

SCHEMA_VERSION = 3
_PG_SCHEMA_LOCK = 0x6472696C6C  # "drill": serializes schema creation between processes on PostgreSQL

metadata = sa.MetaData()
_Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite AUTOINCREMENT needs exactly INTEGER

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.Text, primary_key=True),
    sa.Column("drill_name", sa.Text, nullable=False),
    sa.Column("drill_path", sa.Text, nullable=False),
    sa.Column("mode", sa.Text, nullable=False),
    sa.Column("target_key", sa.Text, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("host", sa.Text, nullable=False),
    sa.Column("deadline_at", sa.Double, nullable=False),
    sa.Column("definition", sa.Text, nullable=False),
    sa.Column("experiment", sa.Text, nullable=False),
    sa.Column("outcome", sa.Text),
    sa.Column("report_dir", sa.Text),
    sa.Column("owner", sa.Text, nullable=False, server_default=""),
    sa.Column("token", sa.Integer, nullable=False, server_default="1"),
    sa.Column("heartbeat_at", sa.Double, nullable=False, server_default="0"),
    sa.Index("runs_created", "created_at"),
)
events = sa.Table(
    "events",
    metadata,
    sa.Column("seq", _Seq, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Text, sa.ForeignKey("runs.run_id"), nullable=False),
    sa.Column("at", sa.Double, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("trigger", sa.Text, nullable=False),
    sa.Column("expected", sa.Text, nullable=False),
    sa.Column("actual", sa.Text, nullable=False),
    sa.Column("duration_s", sa.Double),
    sa.Column("data", sa.Text, nullable=False),
    # Commands are delivered by this flag, not by seq: PostgreSQL sequences are not commit order.
    sa.Column("consumed", sa.Integer, nullable=False, server_default="0"),
    sa.Index("events_run", "run_id", "seq"),
    sqlite_autoincrement=True,
)
suspensions = sa.Table(
    "suspensions",
    metadata,
    sa.Column("run_id", sa.Text, sa.ForeignKey("runs.run_id"), primary_key=True),
    sa.Column("policy", sa.Text, primary_key=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("target_key", sa.Text, nullable=False),
    sa.Column("prior", sa.Text, nullable=False),
    sa.Column("deadline_at", sa.Double, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("prior_known", sa.Integer, nullable=False, server_default="1"),
    # The order the run recorded its intents in (1, 2, ...): restores go in its reverse. 0: written before v3.
    sa.Column("ordinal", sa.Integer, nullable=False, server_default="0"),
)
target_locks = sa.Table(
    "target_locks",
    metadata,
    sa.Column("target_key", sa.Text, primary_key=True),
    sa.Column("run_id", sa.Text, nullable=False),
    sa.Column("locked_at", sa.Double, nullable=False),
)
schema_version = sa.Table("schema_version", metadata, sa.Column("version", sa.Integer, nullable=False))

# Columns added after version 1, with the value a version 1 row reads as (read-only opens).
_V1_MISSING: dict[str, dict[str, Any]] = {
    "runs": {"owner": "", "token": 1, "heartbeat_at": 0.0},
    "events": {"consumed": 1},
    "suspensions": {"prior_known": 1, "ordinal": 0},
}
_V2_MISSING: dict[str, dict[str, Any]] = {"suspensions": {"ordinal": 0}}
_V1_TO_V2 = [
    "ALTER TABLE runs ADD COLUMN owner TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE runs ADD COLUMN token INTEGER NOT NULL DEFAULT 1",
    "ALTER TABLE runs ADD COLUMN heartbeat_at REAL NOT NULL DEFAULT 0",
    "UPDATE runs SET heartbeat_at = updated_at",
    "ALTER TABLE events ADD COLUMN consumed INTEGER NOT NULL DEFAULT 0",
    "UPDATE events SET consumed = 1 WHERE kind = 'command'",
    "ALTER TABLE suspensions ADD COLUMN prior_known INTEGER NOT NULL DEFAULT 1",
    "CREATE INDEX IF NOT EXISTS runs_created ON runs (created_at)",
]
_V2_TO_V3 = ["ALTER TABLE suspensions ADD COLUMN ordinal INTEGER NOT NULL DEFAULT 0"]


display_url = sqlengines.display_url


def _sqlite_path(url: str | Path) -> Path | None:
    return sqlengines.sqlite_path(url, what="a journal", error=errors.JournalError)


class JournalDb:
    """One journal database; safe to share between threads (one pooled connection per thread)."""

    def __init__(self, url: str | Path, *, read_only: bool, busy_timeout_s: float = 30.0) -> None:
        self.url = display_url(url)
        self.read_only = read_only
        self._missing: dict[str, dict[str, Any]] = {}
        path = _sqlite_path(url)
        self.path = path
        self._statements = journalsuspensions.SuspensionStatements(suspensions, events, where=self.url)
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

    # -- engines -----------------------------------------------------------------------------------

    def _sqlite_engine(self, path: Path, busy_timeout_s: float) -> sa.Engine:
        return sqlengines.sqlite_engine(
            path,
            read_only=self.read_only,
            busy_timeout_s=busy_timeout_s,
            what="the journal",
            missing=errors.JournalUnavailableError(
                f"no journal at {path}: no run has been started with this DRILL_HOME or DRILL_JOURNAL_URL yet"
            ),
            unopenable=errors.JournalUnavailableError,
        )

    def _postgresql_engine(self, url: str) -> sa.Engine:
        return sqlengines.postgresql_engine(url, read_only=self.read_only, what="journal", error=errors.JournalError)

    def close(self) -> None:
        self._engine.dispose()

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    # -- transactions and errors -------------------------------------------------------------------

    @contextlib.contextmanager
    def _translate(self, what: str) -> Iterator[None]:
        """Driver errors become the journal's own, with their domain meaning decided here."""
        try:
            yield
        except errors.DrillError:
            raise
        except sa_exc.IntegrityError as exc:
            raise errors.JournalError(f"journal {what} refused by {self.url}: {_first_line(exc)}") from exc
        except sa_exc.DBAPIError as exc:
            text = _first_line(exc)
            lowered = text.lower()
            if "readonly database" in lowered or "read-only transaction" in lowered:
                raise errors.JournalReadOnlyError(f"the journal at {self.url} is read-only: {text}") from exc
            # OperationalError: cannot connect, locked past the timeout, cannot open; a bare
            # DatabaseError from SQLite: the file is not a database or is damaged.
            if (
                exc.connection_invalidated
                or isinstance(exc, sa_exc.OperationalError)
                or type(exc) is sa_exc.DatabaseError
            ):
                raise errors.JournalUnavailableError(f"cannot {what} the journal at {self.url}: {text}") from exc
            raise errors.JournalError(f"journal {what} failed ({self.url}): {text}") from exc
        except sa_exc.SQLAlchemyError as exc:
            raise errors.JournalError(f"journal {what} failed ({self.url}): {_first_line(exc)}") from exc

    @contextlib.contextmanager
    def _write(self, what: str) -> Iterator[sa.Connection]:
        """One write transaction, committed (durable) when the block ends."""
        if self.read_only:
            raise errors.JournalReadOnlyError(f"the journal at {self.url} was opened read-only; cannot {what}")
        with self._translate(what), sqlengines.transaction(self._engine, write=True) as conn:
            yield conn

    @contextlib.contextmanager
    def _read(self, what: str) -> Iterator[sa.Connection]:
        with self._translate(what), sqlengines.transaction(self._engine, write=False) as conn:
            yield conn

    # -- schema ------------------------------------------------------------------------------------

    def _prepare_schema(self) -> None:
        if self.read_only:
            with self._read("open") as conn:
                version = self._version(conn)
                self._check_version(version, read_only=True)
                if version == 1:
                    self._missing = _V1_MISSING
                elif version == 2:
                    self._missing = _V2_MISSING
            return
        with self._write("open") as conn:
            if self.dialect == "postgresql":
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_SCHEMA_LOCK)))
            version = self._version(conn)
            self._check_version(version, read_only=False)
            if version == 0:
                metadata.create_all(conn)
                conn.execute(schema_version.insert().values(version=SCHEMA_VERSION))
                return
            if version == 1:  # only ever a SQLite layout
                for statement in _V1_TO_V2:
                    conn.exec_driver_sql(statement)
                target_locks.create(conn, checkfirst=True)
                schema_version.create(conn, checkfirst=True)
            if version in (1, 2):
                for statement in _V2_TO_V3:
                    conn.exec_driver_sql(statement)
                conn.execute(schema_version.insert().values(version=SCHEMA_VERSION))

    @staticmethod
    def _version(conn: sa.Connection) -> int:
        """0 for an empty database, 1 for the first SQLite layout, else the recorded version."""
        tables = set(sa.inspect(conn).get_table_names())
        if "schema_version" in tables:
            return int(conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar_one() or 0)
        return 1 if "runs" in tables else 0

    def _check_version(self, version: int, *, read_only: bool) -> None:
        if version > SCHEMA_VERSION:
            raise errors.JournalError(
                f"the journal at {self.url} has schema version {version}, newer than this drill knows"
                f" ({SCHEMA_VERSION}): upgrade drill"
            )
        if version == 0 and read_only:
            raise errors.JournalUnavailableError(f"no journal at {self.url} (the database holds no journal tables)")

    def _columns(self, table: sa.Table) -> list[sa.Column[Any]]:
        missing = self._missing.get(table.name, {})
        return [c for c in table.c if c.name not in missing]

    def _row(self, table: sa.Table, row: sa.Row[Any]) -> Row:
        values = dict(row._mapping)
        for name, default in self._missing.get(table.name, {}).items():
            values.setdefault(name, default)
        return values

    # -- fencing -----------------------------------------------------------------------------------

    def _locked_run(self, conn: sa.Connection, run_id: str, token: int | None) -> Row:
        """The run's row, locked for this transaction; refused if ``token`` is no longer the owner's."""
        row = conn.execute(sa.select(*self._columns(runs)).where(runs.c.run_id == run_id).with_for_update()).first()
        if row is None:
            raise errors.RunNotFoundError(f"no run {run_id!r} in {self.url}; `drill runs` lists them")
        values = self._row(runs, row)
        if token is not None and values["token"] != token:
            raise errors.OwnershipLostError(
                f"run {run_id} was taken over by {values['owner'] or 'another process'} (token {values['token']},"
                f" this process holds {token}); this process writes nothing more"
            )
        return values

    # -- runs --------------------------------------------------------------------------------------

    def insert_run(self, run: Row, event: Row) -> None:
        with self._write("create the run") as conn:
            conn.execute(runs.insert().values(**run))
            conn.execute(events.insert().values(**event))

    def run(self, run_id: str) -> Row | None:
        with self._read("read") as conn:
            row = conn.execute(sa.select(*self._columns(runs)).where(runs.c.run_id == run_id)).first()
            return None if row is None else self._row(runs, row)

    def runs(self, *, states: Collection[str] = (), prefix: str | None = None, limit: int | None = None) -> list[Row]:
        """Newest first. ``prefix`` is compared literally (no LIKE: '%' and '_' are plain characters)."""
        query = sa.select(*self._columns(runs)).order_by(runs.c.created_at.desc(), runs.c.run_id.desc())
        if states:
            query = query.where(runs.c.state.in_(list(states)))
        if prefix is not None:
            query = query.where(sa.func.substr(runs.c.run_id, 1, len(prefix)) == prefix)
        if limit is not None:
            query = query.limit(limit)
        with self._read("read") as conn:
            return [self._row(runs, r) for r in conn.execute(query)]

    def set_state(
        self, run_id: str, state: str, *, at: float, event: Row, token: int | None, expect: Collection[str]
    ) -> None:
        with self._write("record the transition") as conn:
            current = self._locked_run(conn, run_id, token)
            if expect and current["state"] not in expect:
                raise errors.StateConflictError(
                    f"run {run_id} is {current['state']}, not {' or '.join(sorted(expect))}; not moved to {state}"
                )
            conn.execute(runs.update().where(runs.c.run_id == run_id).values(state=state, updated_at=at))
            conn.execute(events.insert().values(**event))

    def update_run(self, run_id: str, values: Row, *, token: int | None) -> None:
        with self._write("update the run") as conn:
            self._locked_run(conn, run_id, token)
            conn.execute(runs.update().where(runs.c.run_id == run_id).values(**values))

    def heartbeat(self, run_id: str, *, token: int, at: float) -> None:
        with self._write("record the heartbeat") as conn:
            done = conn.execute(
                runs.update().where(runs.c.run_id == run_id, runs.c.token == token).values(heartbeat_at=at)
            )
            if done.rowcount != 1:
                self._locked_run(conn, run_id, token)  # raises: not found or taken over

    def take_over(self, run_id: str, *, owner: str, expected_token: int, at: float, event: Row) -> int:
        """Compare-and-set on the ownership record: one conditional UPDATE, so exactly one contender wins."""
        with self._write("take over the run") as conn:
            won = conn.execute(
                runs.update()
                .where(runs.c.run_id == run_id, runs.c.token == expected_token)
                .values(owner=owner, token=expected_token + 1, heartbeat_at=at)
            )
            if won.rowcount != 1:
                current = self._locked_run(conn, run_id, None)
                raise errors.OwnershipLostError(
                    f"run {run_id} is held by {current['owner'] or 'its first process'} with token"
                    f" {current['token']}, not {expected_token}: another process took it over first"
                )
            conn.execute(events.insert().values(**event))
        return expected_token + 1

    # -- target locks ------------------------------------------------------------------------------

    def lock_target(self, target_key: str, *, run_id: str, at: float, finished: Collection[str]) -> str | None:
        insert = sa_postgresql.insert if self.dialect == "postgresql" else sa_sqlite.insert
        with self._write("lock the target") as conn:
            for _ in range(5):  # the holder may unlock between our insert and our read: try again
                taken = conn.execute(
                    insert(target_locks)
                    .values(target_key=target_key, run_id=run_id, locked_at=at)
                    .on_conflict_do_nothing(index_elements=["target_key"])
                )
                if taken.rowcount == 1:
                    return None
                holder = conn.execute(
                    sa.select(target_locks.c.run_id).where(target_locks.c.target_key == target_key).with_for_update()
                ).scalar_one_or_none()
                if holder is None:
                    continue
                if holder == run_id:
                    return None
                state = conn.execute(sa.select(runs.c.state).where(runs.c.run_id == holder)).scalar_one_or_none()
                if state is not None and state not in finished:
                    return str(holder)
                conn.execute(
                    target_locks.update()
                    .where(target_locks.c.target_key == target_key, target_locks.c.run_id == holder)
                    .values(run_id=run_id, locked_at=at)
                )
                return None
        raise errors.JournalError(f"could not lock {target_key} in {self.url}: the lock kept changing hands")

    def unlock_target(self, target_key: str, *, run_id: str) -> None:
        with self._write("unlock the target") as conn:
            conn.execute(
                target_locks.delete().where(target_locks.c.target_key == target_key, target_locks.c.run_id == run_id)
            )

    # -- events ------------------------------------------------------------------------------------

    def append(self, event: Row, *, token: int | None) -> int:
        with self._write("append the event") as conn:
            if token is not None:
                self._locked_run(conn, str(event["run_id"]), token)
            key = conn.execute(events.insert().values(**event)).inserted_primary_key
            assert key is not None
            return int(key[0])

    def events(self, run_id: str, *, after_seq: int, kinds: Sequence[str]) -> list[Row]:
        query = sa.select(*self._columns(events)).where(events.c.run_id == run_id, events.c.seq > after_seq)
        if kinds:
            query = query.where(events.c.kind.in_(list(kinds)))
        with self._read("read the events") as conn:
            return [self._row(events, r) for r in conn.execute(query.order_by(events.c.seq))]

    def take_events(self, run_id: str, *, kind: str, token: int) -> list[Row]:
        """Unconsumed events of ``kind``, in seq order, marked consumed in the same transaction."""
        with self._write("take the commands") as conn:
            self._locked_run(conn, run_id, token)
            rows = [
                dict(r._mapping)
                for r in conn.execute(
                    sa.select(events)
                    .where(events.c.run_id == run_id, events.c.kind == kind, events.c.consumed == 0)
                    .order_by(events.c.seq)
                )
            ]
            if rows:
                conn.execute(events.update().where(events.c.seq.in_([r["seq"] for r in rows])).values(consumed=1))
            return rows

    # -- suspensions -------------------------------------------------------------------------------

    # Each write below is one transaction however many items it carries (the store's single writes
    # are batches of one), and means exactly the sequence of single writes (``journalsuspensions``
    # writes one item); an item refused rolls back the whole batch. An empty batch writes nothing
    # and opens no transaction.

    def _fence(self, conn: sa.Connection, token: int | None) -> Callable[[str], None]:
        """Fences this transaction's writes to a run by ``token``, locking each run once."""
        fenced: set[str] = set()

        def fence(run_id: str) -> None:
            if run_id not in fenced:
                self._locked_run(conn, run_id, token)
                fenced.add(run_id)

        return fence

    def insert_suspensions(self, items: Sequence[tuple[Row, Row]], *, token: int | None) -> None:
        """Intents: each (suspension row, event row) in order."""
        if not items:
            return
        first = items[0][0]
        what = (
            f"record the intent for {first['policy']} of run {first['run_id']}"
            if len(items) == 1
            else f"record {len(items)} intents of run {', '.join(sorted({str(s['run_id']) for s, _ in items}))}"
        )
        with self._write(what) as conn:
            fence = self._fence(conn, token)
            last: dict[str, int] = {}  # per run: the ordinal of its latest intent
            for suspension, event in items:
                run_id = str(suspension["run_id"])
                fence(run_id)
                if run_id not in last:
                    last[run_id] = self._statements.last_ordinal(conn, run_id)
                last[run_id] += 1
                self._statements.insert(conn, {**suspension, "ordinal": last[run_id]}, event)

    def set_priors(self, run_id: str, priors: Sequence[tuple[str, str]], *, token: int | None) -> None:
        """Prior values (JSON text), each (policy, prior) in order; written once per policy."""
        if not priors:
            return
        what = (
            f"record the prior of {priors[0][0]}"
            if len(priors) == 1
            else f"record {len(priors)} priors of run {run_id}"
        )
        with self._write(what) as conn:
            self._locked_run(conn, run_id, token)
            for policy, prior in priors:
                self._statements.set_prior(conn, run_id, policy, prior)

    def update_suspensions(
        self, run_id: str, updates: Sequence[journalsuspensions.Update], *, token: int | None
    ) -> None:
        """State changes, each in order; compare-and-set per item when it names ``expect``ed states."""
        if not updates:
            return
        what = (
            f"update the suspension of {updates[0].policy}"
            if len(updates) == 1
            else f"update {len(updates)} suspensions of run {run_id}"
        )
        with self._write(what) as conn:
            self._locked_run(conn, run_id, token)
            for update in updates:
                self._statements.update(conn, run_id, update)

    def suspensions(self, *, run_id: str | None, states: Collection[str]) -> list[Row]:
        order = [suspensions.c.run_id, suspensions.c.policy]
        if "ordinal" not in self._missing.get("suspensions", {}):
            order.insert(1, suspensions.c.ordinal)  # the order of the intents; restores reverse it
        query = sa.select(*self._columns(suspensions)).order_by(*order)
        if run_id is not None:
            query = query.where(suspensions.c.run_id == run_id)
        if states:
            query = query.where(suspensions.c.state.in_(list(states)))
        with self._read("read the suspensions") as conn:
            return [self._row(suspensions, r) for r in conn.execute(query)]


_first_line = sqlengines.first_line
