"""The journal's database, in plain SQL over DB-API: SQLite (one file, the default) or PostgreSQL (a team's).

Everything that knows SQL lives here (the per-item suspension statements in ``journalsuspensions``):
the tables, one connection pool per URL (``adapters.sqldb``), the schema version and its migrations,
the dialect differences, and the translation of driver errors into ``orchestrator.errors`` (decided
here: a read-only database is ``JournalReadOnlyError``, a file that is not a database is
``JournalUnavailableError``). Rows cross this boundary as plain dicts keyed by column name;
``orchestrator.journal.store`` turns them into records.

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

from orchestrator import errors
from orchestrator.adapters import journalsuspensions, sqldb
from orchestrator.adapters.sqldb import marks

Row = dict[str, Any]

SCHEMA_VERSION = 3
_PG_SCHEMA_LOCK = 0x6472696C6C  # "drill": serializes schema creation between processes on PostgreSQL

_COLUMNS: dict[str, tuple[str, ...]] = {
    "runs": (
        "run_id", "drill_name", "drill_path", "mode", "target_key", "state", "created_at", "updated_at", "pid",
        "host", "deadline_at", "definition", "experiment", "outcome", "report_dir", "owner", "token",
        "heartbeat_at",
    ),
    "events": (
        "seq", "run_id", "at", "kind", "name", "actor", "trigger", "expected", "actual", "duration_s", "data",
        "consumed",
    ),
    "suspensions": (
        "run_id", "policy", "kind", "target_key", "prior", "deadline_at", "state", "updated_at", "detail",
        "prior_known", "ordinal",
    ),
}  # fmt: skip


def _schema(d: sqldb.Dialect) -> list[str]:
    """The current layout's DDL (every statement safe to repeat)."""
    return [
        f"""CREATE TABLE IF NOT EXISTS runs (
            run_id TEXT NOT NULL PRIMARY KEY, drill_name TEXT NOT NULL, drill_path TEXT NOT NULL,
            mode TEXT NOT NULL, target_key TEXT NOT NULL, state TEXT NOT NULL, created_at {d.double} NOT NULL,
            updated_at {d.double} NOT NULL, pid INTEGER NOT NULL, host TEXT NOT NULL,
            deadline_at {d.double} NOT NULL, definition TEXT NOT NULL, experiment TEXT NOT NULL, outcome TEXT,
            report_dir TEXT, owner TEXT NOT NULL DEFAULT '', token INTEGER NOT NULL DEFAULT 1,
            heartbeat_at {d.double} NOT NULL DEFAULT 0)""",
        "CREATE INDEX IF NOT EXISTS runs_created ON runs (created_at)",
        f"""CREATE TABLE IF NOT EXISTS events (
            seq {d.serial_key}, run_id TEXT NOT NULL REFERENCES runs (run_id), at {d.double} NOT NULL,
            kind TEXT NOT NULL, name TEXT NOT NULL, actor TEXT NOT NULL, trigger TEXT NOT NULL,
            expected TEXT NOT NULL, actual TEXT NOT NULL, duration_s {d.double}, data TEXT NOT NULL,
            consumed INTEGER NOT NULL DEFAULT 0)""",
        # Commands are delivered by ``consumed``, not by seq: PostgreSQL sequences are not commit order.
        "CREATE INDEX IF NOT EXISTS events_run ON events (run_id, seq)",
        # ordinal: the order the run recorded its intents in (1, 2, ...): restores go in its reverse. 0: before v3.
        f"""CREATE TABLE IF NOT EXISTS suspensions (
            run_id TEXT NOT NULL REFERENCES runs (run_id), policy TEXT NOT NULL, kind TEXT NOT NULL,
            target_key TEXT NOT NULL, prior TEXT NOT NULL, deadline_at {d.double} NOT NULL, state TEXT NOT NULL,
            updated_at {d.double} NOT NULL, detail TEXT NOT NULL, prior_known INTEGER NOT NULL DEFAULT 1,
            ordinal INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (run_id, policy))""",
        *_locks_and_version(d),
    ]


def _locks_and_version(d: sqldb.Dialect) -> list[str]:
    """The tables version 2 added (created by a migration from version 1 too)."""
    return [
        f"""CREATE TABLE IF NOT EXISTS target_locks (
            target_key TEXT NOT NULL PRIMARY KEY, run_id TEXT NOT NULL, locked_at {d.double} NOT NULL)""",
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
    ]


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


display_url = sqldb.display_url


class JournalDb(sqldb.SqlAdapter):
    """One journal database; safe to share between threads (one pooled connection per thread)."""

    def __init__(self, url: str | Path, *, read_only: bool, busy_timeout_s: float = 30.0) -> None:
        self.url = display_url(url)
        self.read_only = read_only
        self._missing: dict[str, dict[str, Any]] = {}
        path = sqldb.sqlite_path(url, what="a journal", error=errors.JournalError)
        database = sqldb.Database(
            url,
            path,
            read_only=read_only,
            busy_timeout_s=busy_timeout_s,
            what="the journal",
            kind="journal",
            missing=errors.JournalUnavailableError(
                f"no journal at {path}: no run has been started with this DRILL_HOME or DRILL_JOURNAL_URL yet"
            ),
            error=errors.JournalError,
            unopenable=errors.JournalUnavailableError,
            max_connections=64 if path is not None else 10,  # as the pools before: 4 + 60 on SQLite, 2 + 8
        )
        self.path = path
        self._statements = journalsuspensions.SuspensionStatements(where=self.url)
        self._select: dict[str, str] = {}
        self._open(database)

    # -- transactions and errors -------------------------------------------------------------------

    @contextlib.contextmanager
    def _translate(self, what: str) -> Iterator[None]:
        """Driver errors become the journal's own, with their domain meaning decided here."""
        try:
            yield
        except errors.DrillError:
            raise
        except Exception as exc:
            driver = self._db.dialect.driver
            if not isinstance(exc, driver.Error):
                raise
            text = sqldb.first_line(exc)
            if isinstance(exc, driver.IntegrityError):
                raise errors.JournalError(f"journal {what} refused by {self.url}: {text}") from exc
            lowered = text.lower()
            if "readonly database" in lowered or "read-only transaction" in lowered:
                raise errors.JournalReadOnlyError(f"the journal at {self.url} is read-only: {text}") from exc
            # Cannot connect, locked past the timeout, cannot open; a bare DatabaseError from SQLite:
            # the file is not a database or is damaged.
            if self._db.disconnected(exc):
                raise errors.JournalUnavailableError(f"cannot {what} the journal at {self.url}: {text}") from exc
            raise errors.JournalError(f"journal {what} failed ({self.url}): {text}") from exc

    def _refused(self, what: str) -> errors.DrillError:
        return errors.JournalReadOnlyError(f"the journal at {self.url} was opened read-only; cannot {what}")

    # -- schema ------------------------------------------------------------------------------------

    def _prepare_schema(self) -> None:
        if self.read_only:
            with self._read("open") as tx:
                version = self._version(tx)
                self._check_version(version, read_only=True)
                if version == 1:
                    self._missing = _V1_MISSING
                elif version == 2:
                    self._missing = _V2_MISSING
            return
        with self._write("open") as tx:
            if self.dialect == "postgresql":
                tx.execute("SELECT pg_advisory_xact_lock(?)", [_PG_SCHEMA_LOCK])
            version = self._version(tx)
            self._check_version(version, read_only=False)
            if version == 0:
                for statement in _schema(tx.dialect):
                    tx.execute(statement)
                tx.execute("INSERT INTO schema_version (version) VALUES (?)", [SCHEMA_VERSION])
                return
            if version == 1:  # only ever a SQLite layout
                for statement in (*_V1_TO_V2, *_locks_and_version(tx.dialect)):
                    tx.execute(statement)
            if version in (1, 2):
                for statement in _V2_TO_V3:
                    tx.execute(statement)
                tx.execute("INSERT INTO schema_version (version) VALUES (?)", [SCHEMA_VERSION])

    @staticmethod
    def _version(tx: sqldb.Transaction) -> int:
        """0 for an empty database, 1 for the first SQLite layout, else the recorded version."""
        tables = tx.tables()
        if "schema_version" in tables:
            return int(tx.scalar("SELECT max(version) FROM schema_version") or 0)
        return 1 if "runs" in tables else 0

    def _check_version(self, version: int, *, read_only: bool) -> None:
        if version > SCHEMA_VERSION:
            raise errors.JournalError(
                f"the journal at {self.url} has schema version {version}, newer than this drill knows"
                f" ({SCHEMA_VERSION}): upgrade drill"
            )
        if version == 0 and read_only:
            raise errors.JournalUnavailableError(f"no journal at {self.url} (the database holds no journal tables)")

    def _columns(self, table: str) -> str:
        """``SELECT <columns> FROM <table>``: the columns this journal's version has."""
        if table not in self._select:
            missing = self._missing.get(table, {})
            self._select[table] = f"SELECT {', '.join(c for c in _COLUMNS[table] if c not in missing)} FROM {table}"
        return self._select[table]

    def _rows(self, table: str, rows: list[Row]) -> list[Row]:
        for name, default in self._missing.get(table, {}).items():
            for values in rows:
                values.setdefault(name, default)
        return rows

    # -- fencing -----------------------------------------------------------------------------------

    def _locked_run(self, tx: sqldb.Transaction, run_id: str, token: int | None) -> Row:
        """The run's row, locked for this transaction; refused if ``token`` is no longer the owner's."""
        row = tx.first(f"{self._columns('runs')} WHERE run_id = ?{tx.dialect.for_update}", [run_id])
        if row is None:
            raise errors.RunNotFoundError(f"no run {run_id!r} in {self.url}; `drill runs` lists them")
        values = self._rows("runs", [row])[0]
        if token is not None and values["token"] != token:
            raise errors.OwnershipLostError(
                f"run {run_id} was taken over by {values['owner'] or 'another process'} (token {values['token']},"
                f" this process holds {token}); this process writes nothing more"
            )
        return values

    # -- runs --------------------------------------------------------------------------------------

    def insert_run(self, run: Row, event: Row) -> None:
        with self._write("create the run") as tx:
            tx.insert("runs", run)
            tx.insert("events", event)

    def run(self, run_id: str) -> Row | None:
        with self._read("read") as tx:
            found = tx.rows(f"{self._columns('runs')} WHERE run_id = ?", [run_id])
            return self._rows("runs", found)[0] if found else None

    def runs(self, *, states: Collection[str] = (), prefix: str | None = None, limit: int | None = None) -> list[Row]:
        """Newest first. ``prefix`` is compared literally (no LIKE: '%' and '_' are plain characters)."""
        where: list[str] = []
        params: list[Any] = []
        if states:
            where.append(f"state IN ({marks(states)})")
            params.extend(states)
        if prefix is not None:
            where.append("substr(run_id, 1, ?) = ?")
            params.extend([len(prefix), prefix])
        query = self._columns("runs")
        if where:
            query += " WHERE " + " AND ".join(where)
        query += " ORDER BY created_at DESC, run_id DESC"
        if limit is not None:
            query += " LIMIT ?"
            params.append(limit)
        with self._read("read") as tx:
            return self._rows("runs", tx.rows(query, params))

    def set_state(
        self, run_id: str, state: str, *, at: float, event: Row, token: int | None, expect: Collection[str]
    ) -> None:
        with self._write("record the transition") as tx:
            current = self._locked_run(tx, run_id, token)
            if expect and current["state"] not in expect:
                raise errors.StateConflictError(
                    f"run {run_id} is {current['state']}, not {' or '.join(sorted(expect))}; not moved to {state}"
                )
            tx.execute("UPDATE runs SET state = ?, updated_at = ? WHERE run_id = ?", [state, at, run_id])
            tx.insert("events", event)

    def update_run(self, run_id: str, values: Row, *, token: int | None) -> None:
        with self._write("update the run") as tx:
            self._locked_run(tx, run_id, token)
            assignments = ", ".join(f"{name} = ?" for name in values)
            tx.execute(f"UPDATE runs SET {assignments} WHERE run_id = ?", [*values.values(), run_id])

    def heartbeat(self, run_id: str, *, token: int, at: float) -> None:
        with self._write("record the heartbeat") as tx:
            done = tx.execute("UPDATE runs SET heartbeat_at = ? WHERE run_id = ? AND token = ?", [at, run_id, token])
            if done != 1:
                self._locked_run(tx, run_id, token)  # raises: not found or taken over

    def take_over(self, run_id: str, *, owner: str, expected_token: int, at: float, event: Row) -> int:
        """Compare-and-set on the ownership record: one conditional UPDATE, so exactly one contender wins."""
        with self._write("take over the run") as tx:
            won = tx.execute(
                "UPDATE runs SET owner = ?, token = ?, heartbeat_at = ? WHERE run_id = ? AND token = ?",
                [owner, expected_token + 1, at, run_id, expected_token],
            )
            if won != 1:
                current = self._locked_run(tx, run_id, None)
                raise errors.OwnershipLostError(
                    f"run {run_id} is held by {current['owner'] or 'its first process'} with token"
                    f" {current['token']}, not {expected_token}: another process took it over first"
                )
            tx.insert("events", event)
        return expected_token + 1

    # -- target locks ------------------------------------------------------------------------------

    def lock_target(self, target_key: str, *, run_id: str, at: float, finished: Collection[str]) -> str | None:
        with self._write("lock the target") as tx:
            for _ in range(5):  # the holder may unlock between our insert and our read: try again
                taken = tx.execute(
                    "INSERT INTO target_locks (target_key, run_id, locked_at) VALUES (?, ?, ?)"
                    " ON CONFLICT (target_key) DO NOTHING",
                    [target_key, run_id, at],
                )
                if taken == 1:
                    return None
                holder = tx.scalar(
                    f"SELECT run_id FROM target_locks WHERE target_key = ?{tx.dialect.for_update}", [target_key]
                )
                if holder is None:
                    continue
                if holder == run_id:
                    return None
                state = tx.scalar("SELECT state FROM runs WHERE run_id = ?", [holder])
                if state is not None and state not in finished:
                    return str(holder)
                tx.execute(
                    "UPDATE target_locks SET run_id = ?, locked_at = ? WHERE target_key = ? AND run_id = ?",
                    [run_id, at, target_key, holder],
                )
                return None
        raise errors.JournalError(f"could not lock {target_key} in {self.url}: the lock kept changing hands")

    def unlock_target(self, target_key: str, *, run_id: str) -> None:
        with self._write("unlock the target") as tx:
            tx.execute("DELETE FROM target_locks WHERE target_key = ? AND run_id = ?", [target_key, run_id])

    # -- events ------------------------------------------------------------------------------------

    def append(self, events: Sequence[Row], *, token: int | None) -> list[int]:
        """Events in order, in one transaction (one fsync however many); their seqs. Nothing for none."""
        if not events:
            return []
        with self._write("append the event" if len(events) == 1 else f"append {len(events)} events") as tx:
            fence = self._fence(tx, token)
            seqs: list[int] = []
            for event in events:
                if token is not None:
                    fence(str(event["run_id"]))
                seqs.append(int(tx.insert("events", event, returning="seq")))
            return seqs

    def events(self, run_id: str, *, after_seq: int, kinds: Sequence[str]) -> list[Row]:
        query = f"{self._columns('events')} WHERE run_id = ? AND seq > ?"
        params: list[Any] = [run_id, after_seq]
        if kinds:
            query += f" AND kind IN ({marks(kinds)})"
            params.extend(kinds)
        with self._read("read the events") as tx:
            return self._rows("events", tx.rows(f"{query} ORDER BY seq", params))

    def take_events(self, run_id: str, *, kind: str, token: int) -> list[Row]:
        """Unconsumed events of ``kind``, in seq order, marked consumed in the same transaction."""
        with self._write("take the commands") as tx:
            self._locked_run(tx, run_id, token)
            rows = tx.rows(
                f"{self._columns('events')} WHERE run_id = ? AND kind = ? AND consumed = 0 ORDER BY seq",
                [run_id, kind],
            )
            if rows:
                seqs = [r["seq"] for r in rows]
                tx.execute(f"UPDATE events SET consumed = 1 WHERE seq IN ({marks(seqs)})", seqs)
            return rows

    # -- suspensions -------------------------------------------------------------------------------

    # Each write below is one transaction however many items it carries (the store's single writes
    # are batches of one), and means exactly the sequence of single writes (``journalsuspensions``
    # writes one item); an item refused rolls back the whole batch. An empty batch writes nothing
    # and opens no transaction.

    def _fence(self, tx: sqldb.Transaction, token: int | None) -> Callable[[str], None]:
        """Fences this transaction's writes to a run by ``token``, locking each run once."""
        fenced: set[str] = set()

        def fence(run_id: str) -> None:
            if run_id not in fenced:
                self._locked_run(tx, run_id, token)
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
        with self._write(what) as tx:
            fence = self._fence(tx, token)
            last: dict[str, int] = {}  # per run: the ordinal of its latest intent
            for suspension, event in items:
                run_id = str(suspension["run_id"])
                fence(run_id)
                if run_id not in last:
                    last[run_id] = self._statements.last_ordinal(tx, run_id)
                last[run_id] += 1
                self._statements.insert(tx, {**suspension, "ordinal": last[run_id]}, event)

    def set_priors(self, run_id: str, priors: Sequence[tuple[str, str]], *, token: int | None) -> None:
        """Prior values (JSON text), each (policy, prior) in order; written once per policy."""
        if not priors:
            return
        what = (
            f"record the prior of {priors[0][0]}"
            if len(priors) == 1
            else f"record {len(priors)} priors of run {run_id}"
        )
        with self._write(what) as tx:
            self._locked_run(tx, run_id, token)
            for policy, prior in priors:
                self._statements.set_prior(tx, run_id, policy, prior)

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
        with self._write(what) as tx:
            self._locked_run(tx, run_id, token)
            for update in updates:
                self._statements.update(tx, run_id, update)

    def suspensions(self, *, run_id: str | None, states: Collection[str]) -> list[Row]:
        where: list[str] = []
        params: list[Any] = []
        if run_id is not None:
            where.append("run_id = ?")
            params.append(run_id)
        if states:
            where.append(f"state IN ({marks(states)})")
            params.extend(states)
        query = self._columns("suspensions")
        if where:
            query += " WHERE " + " AND ".join(where)
        # the order of the intents (restores reverse it); a version 2 journal has none: by name
        ordinal = "" if "ordinal" in self._missing.get("suspensions", {}) else " ordinal,"
        query += f" ORDER BY run_id,{ordinal} policy"
        with self._read("read the suspensions") as tx:
            return self._rows("suspensions", tx.rows(query, params))
