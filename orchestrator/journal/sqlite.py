"""The SQLite journal store: WAL mode, ``synchronous=FULL``, one file shared by every run on the machine.

WAL lets ``drill ack`` in another terminal write while the run reads; FULL sync makes each
commit durable before the function returns, which is what makes the journal write-ahead.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from orchestrator import errors, records

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    drill_name TEXT NOT NULL,
    drill_path TEXT NOT NULL,
    mode TEXT NOT NULL,
    target_key TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    deadline_at REAL NOT NULL,
    definition TEXT NOT NULL,
    experiment TEXT NOT NULL,
    outcome TEXT,
    report_dir TEXT
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    actor TEXT NOT NULL,
    trigger TEXT NOT NULL,
    expected TEXT NOT NULL,
    actual TEXT NOT NULL,
    duration_s REAL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_run ON events(run_id, seq);
CREATE TABLE IF NOT EXISTS suspensions (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    policy TEXT NOT NULL,
    kind TEXT NOT NULL,
    target_key TEXT NOT NULL,
    prior TEXT NOT NULL,
    deadline_at REAL NOT NULL,
    state TEXT NOT NULL,
    updated_at REAL NOT NULL,
    detail TEXT NOT NULL,
    PRIMARY KEY (run_id, policy)
);
"""


class SqliteJournal:
    """A journal store in one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), timeout=30.0, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise errors.JournalError(f"cannot open the journal at {path}: {exc}") from exc
        self._lock = threading.RLock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- internals -------------------------------------------------------------------------------

    def _tx(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[int]:
        """Run statements in one immediate transaction; committed (and synced) on return."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                ids: list[int] = []
                for sql, params in statements:
                    cursor = self._db.execute(sql, tuple(params))
                    ids.append(cursor.lastrowid or 0)
                self._db.execute("COMMIT")
                return ids
            except sqlite3.Error as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise errors.JournalError(f"journal write failed ({self.path}): {exc}") from exc

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                self._db.row_factory = sqlite3.Row
                return list(self._db.execute(sql, tuple(params)).fetchall())
            except sqlite3.Error as exc:
                raise errors.JournalError(f"journal read failed ({self.path}): {exc}") from exc

    @staticmethod
    def _event_sql(event: records.Event) -> tuple[str, Sequence[Any]]:
        return (
            "INSERT INTO events (run_id, at, kind, name, actor, trigger, expected, actual, duration_s, data)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                event.run_id,
                event.at,
                event.kind.value,
                event.name,
                event.actor,
                event.trigger,
                event.expected,
                event.actual,
                event.duration_s,
                json.dumps(event.data, sort_keys=True, default=str),
            ),
        )

    @staticmethod
    def _run(row: sqlite3.Row) -> records.RunRecord:
        return records.RunRecord(
            run_id=row["run_id"],
            drill_name=row["drill_name"],
            drill_path=row["drill_path"],
            mode=row["mode"],
            target_key=row["target_key"],
            state=records.RunState(row["state"]),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            pid=row["pid"],
            host=row["host"],
            deadline_at=row["deadline_at"],
            definition=json.loads(row["definition"]),
            experiment=json.loads(row["experiment"]),
            outcome=records.Outcome(row["outcome"]) if row["outcome"] else None,
            report_dir=row["report_dir"],
        )

    @staticmethod
    def _suspension(row: sqlite3.Row) -> records.SuspensionRecord:
        return records.SuspensionRecord(
            run_id=row["run_id"],
            policy=row["policy"],
            kind=row["kind"],
            target_key=row["target_key"],
            prior=json.loads(row["prior"]),
            deadline_at=row["deadline_at"],
            state=records.SuspensionState(row["state"]),
            updated_at=row["updated_at"],
            detail=row["detail"],
        )

    # -- runs --------------------------------------------------------------------------------------

    def create_run(self, run: records.RunRecord) -> None:
        self._tx(
            [
                (
                    "INSERT INTO runs (run_id, drill_name, drill_path, mode, target_key, state, created_at,"
                    " updated_at, pid, host, deadline_at, definition, experiment)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        run.run_id,
                        run.drill_name,
                        run.drill_path,
                        run.mode,
                        run.target_key,
                        run.state.value,
                        run.created_at,
                        run.updated_at,
                        run.pid,
                        run.host,
                        run.deadline_at,
                        json.dumps(run.definition, sort_keys=True, default=str),
                        json.dumps(run.experiment, sort_keys=True, default=str),
                    ),
                ),
                self._event_sql(
                    records.Event(
                        run_id=run.run_id,
                        at=run.created_at,
                        kind=records.EventKind.TRANSITION,
                        name=run.state.value,
                        actor="drill",
                        trigger="drill run",
                        actual=f"run created for {run.drill_name}",
                    )
                ),
            ]
        )

    def get_run(self, run_id: str) -> records.RunRecord:
        rows = self._query("SELECT * FROM runs WHERE run_id = ?", (run_id,))
        if not rows:
            raise errors.RunNotFoundError(f"no run {run_id!r} in {self.path}; `drill runs` lists them")
        return self._run(rows[0])

    def resolve_run(self, ref: str | None) -> records.RunRecord:
        """A run by id, unique id prefix, ``latest``, or (None) the one active run."""
        if ref in (None, "", "active"):
            active = [r for r in self.list_runs(limit=1000) if r.state.active]
            if len(active) == 1:
                return active[0]
            if not active:
                raise errors.RunNotFoundError("no run is in progress; name one (see `drill runs`)")
            ids = ", ".join(r.run_id for r in active)
            raise errors.RunNotFoundError(f"several runs are in progress ({ids}); name one")
        if ref == "latest":
            runs = self.list_runs(limit=1)
            if not runs:
                raise errors.RunNotFoundError(f"no runs yet in {self.path}")
            return runs[0]
        assert ref is not None
        rows = self._query("SELECT * FROM runs WHERE run_id LIKE ? ORDER BY created_at DESC", (ref + "%",))
        if len(rows) == 1:
            return self._run(rows[0])
        if not rows:
            raise errors.RunNotFoundError(f"no run {ref!r}; `drill runs` lists them")
        raise errors.RunNotFoundError(f"{ref!r} matches {len(rows)} runs; give more of the id")

    def list_runs(self, *, limit: int = 50) -> list[records.RunRecord]:
        rows = self._query("SELECT * FROM runs ORDER BY created_at DESC LIMIT ?", (limit,))
        return [self._run(r) for r in rows]

    def set_state(self, run_id: str, state: records.RunState, *, actor: str, trigger: str, at: float = 0.0) -> None:
        now = at or time.time()
        self._tx(
            [
                ("UPDATE runs SET state = ?, updated_at = ? WHERE run_id = ?", (state.value, now, run_id)),
                self._event_sql(
                    records.Event(
                        run_id=run_id,
                        at=now,
                        kind=records.EventKind.TRANSITION,
                        name=state.value,
                        actor=actor,
                        trigger=trigger,
                    )
                ),
            ]
        )

    def finish(self, run_id: str, *, outcome: records.Outcome, report_dir: str | None, at: float) -> None:
        self._tx(
            [
                (
                    "UPDATE runs SET outcome = ?, report_dir = ?, updated_at = ? WHERE run_id = ?",
                    (outcome.value, report_dir, at, run_id),
                )
            ]
        )

    # -- events ------------------------------------------------------------------------------------

    def append(self, event: records.Event) -> int:
        return self._tx([self._event_sql(event)])[0]

    def events(
        self, run_id: str, *, after_seq: int = 0, kinds: Sequence[records.EventKind] = ()
    ) -> list[records.Event]:
        sql = "SELECT * FROM events WHERE run_id = ? AND seq > ?"
        params: list[Any] = [run_id, after_seq]
        if kinds:
            sql += f" AND kind IN ({', '.join('?' for _ in kinds)})"
            params.extend(k.value for k in kinds)
        rows = self._query(sql + " ORDER BY seq", params)
        return [
            records.Event(
                seq=r["seq"],
                run_id=r["run_id"],
                at=r["at"],
                kind=records.EventKind(r["kind"]),
                name=r["name"],
                actor=r["actor"],
                trigger=r["trigger"],
                expected=r["expected"],
                actual=r["actual"],
                duration_s=r["duration_s"],
                data=json.loads(r["data"]),
            )
            for r in rows
        ]

    def export_jsonl(self, run_id: str, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as out:
            for event in self.events(run_id):
                out.write(json.dumps(event.to_json(), sort_keys=True) + "\n")

    # -- suspensions -------------------------------------------------------------------------------

    def record_intent(self, suspension: records.SuspensionRecord, event: records.Event) -> None:
        self._tx(
            [
                (
                    "INSERT OR REPLACE INTO suspensions (run_id, policy, kind, target_key, prior, deadline_at,"
                    " state, updated_at, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        suspension.run_id,
                        suspension.policy,
                        suspension.kind,
                        suspension.target_key,
                        suspension.prior_json(),
                        suspension.deadline_at,
                        suspension.state.value,
                        suspension.updated_at,
                        suspension.detail,
                    ),
                ),
                self._event_sql(event),
            ]
        )

    def update_suspension(
        self,
        run_id: str,
        policy: str,
        state: records.SuspensionState,
        *,
        at: float,
        detail: str,
        event: records.Event,
    ) -> None:
        self._tx(
            [
                (
                    "UPDATE suspensions SET state = ?, updated_at = ?, detail = ? WHERE run_id = ? AND policy = ?",
                    (state.value, at, detail, run_id, policy),
                ),
                self._event_sql(event),
            ]
        )

    def suspensions(self, run_id: str | None = None, *, unrestored: bool = False) -> list[records.SuspensionRecord]:
        sql = "SELECT * FROM suspensions WHERE 1=1"
        params: list[Any] = []
        if run_id is not None:
            sql += " AND run_id = ?"
            params.append(run_id)
        if unrestored:
            sql += " AND state != ?"
            params.append(records.SuspensionState.RESTORED.value)
        return [self._suspension(r) for r in self._query(sql + " ORDER BY run_id, policy", params)]
