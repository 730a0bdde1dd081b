"""The journal store: records in, records out, over one SQL database (``adapters.journaldb``).

``open_journal`` takes a file path (SQLite, the default at ``$DRILL_HOME/journal.db``) or a URL
(``sqlite:///...``, ``postgresql://...``); ``journal_url`` picks ``$DRILL_JOURNAL_URL`` when a team
shares one PostgreSQL journal. This module decides what the rows mean (JSON columns, enums, which
states count as active, how a run reference resolves); the adapter decides how they are stored.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from orchestrator import errors, records, redaction
from orchestrator.adapters import journaldb, journalsuspensions
from orchestrator.journal import base as journal_base

_ACTIVE = tuple(s.value for s in records.RunState if s.active)
_FINISHED = (records.RunState.DONE.value, records.RunState.FAILED.value)
_UNRESTORED = tuple(
    s.value
    for s in (
        records.SuspensionState.INTENDED,
        records.SuspensionState.SUSPENDED,
        records.SuspensionState.RESTORING,
        records.SuspensionState.FAILED,
    )
)


def journal_url(home: Path) -> str:
    """``$DRILL_JOURNAL_URL`` if set (a team's shared database), else the SQLite file in ``home``."""
    return os.environ.get("DRILL_JOURNAL_URL") or str(home / "journal.db")


def open_journal(url: str | Path, *, read_only: bool = False) -> journal_base.JournalStore:
    """A journal store for a path or URL; ``read_only`` never writes (nor migrates) anything."""
    return SqlJournal(url, read_only=read_only)


class SqlJournal:
    """``JournalStore`` on SQLite or PostgreSQL; one instance may be shared by threads."""

    def __init__(self, url: str | Path, *, read_only: bool = False) -> None:
        self._db = journaldb.JournalDb(url, read_only=read_only)
        self.url = self._db.url
        self.read_only = read_only

    def close(self) -> None:
        self._db.close()

    # -- runs --------------------------------------------------------------------------------------

    def create_run(self, run: records.RunRecord) -> None:
        self._db.insert_run(
            {
                "run_id": run.run_id,
                "drill_name": run.drill_name,
                "drill_path": run.drill_path,
                "mode": run.mode.value,
                "target_key": run.target_key,
                "state": run.state.value,
                "created_at": run.created_at,
                "updated_at": run.updated_at,
                "pid": run.pid,
                "host": run.host,
                "deadline_at": run.deadline_at,
                "definition": _dumps(run.definition),
                "experiment": _dumps(run.experiment),
                "outcome": run.outcome.value if run.outcome else None,
                "report_dir": run.report_dir,
                "owner": run.owner,
                "token": 1,
                "heartbeat_at": run.created_at,
            },
            _event_row(
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
        )

    def get_run(self, run_id: str) -> records.RunRecord:
        row = self._db.run(run_id)
        if row is None:
            raise errors.RunNotFoundError(f"no run {run_id!r} in {self.url}; `drill runs` lists them")
        return _run(row)

    def resolve_run(self, ref: str | None) -> records.RunRecord:
        """A run by exact id, unique id prefix (literal), ``latest``, or (None/''/'active') the one active run."""
        if ref in (None, "", "active"):
            active = self.list_runs(limit=0, active_only=True)
            if len(active) == 1:
                return active[0]
            if not active:
                raise errors.RunNotFoundError("no run is in progress; name one (see `drill runs`)")
            ids = ", ".join(r.run_id for r in active)
            raise errors.RunNotFoundError(f"several runs are in progress ({ids}); name one")
        assert ref is not None
        if ref == "latest":
            runs = self.list_runs(limit=1)
            if not runs:
                raise errors.RunNotFoundError(f"no runs yet in {self.url}")
            return runs[0]
        exact = self._db.run(ref)
        if exact is not None:
            return _run(exact)
        rows = self._db.runs(prefix=ref, limit=6)
        if len(rows) == 1:
            return _run(rows[0])
        if not rows:
            raise errors.RunNotFoundError(f"no run {ref!r}; `drill runs` lists them")
        some = ", ".join(r["run_id"] for r in rows[:5])
        count = f"{len(rows)}" if len(rows) <= 5 else "more than 5"
        raise errors.RunNotFoundError(f"{ref!r} matches {count} runs ({some}); give more of the id")

    def list_runs(self, *, limit: int = 50, active_only: bool = False) -> list[records.RunRecord]:
        """Newest first; ``active_only`` filters in the database, over every run. ``limit=0``: no limit."""
        rows = self._db.runs(states=_ACTIVE if active_only else (), limit=limit or None)
        return [_run(r) for r in rows]

    def set_state(
        self,
        run_id: str,
        state: records.RunState,
        *,
        actor: str,
        trigger: str,
        at: float,
        token: int | None = None,
        expect: Collection[records.RunState] = (),
    ) -> None:
        event = records.Event(
            run_id=run_id, at=at, kind=records.EventKind.TRANSITION, name=state.value, actor=actor, trigger=trigger
        )
        self._db.set_state(
            run_id, state.value, at=at, event=_event_row(event), token=token, expect=[s.value for s in expect]
        )

    def finish(
        self, run_id: str, *, outcome: records.Outcome, report_dir: str | None, at: float, token: int | None = None
    ) -> None:
        self._db.update_run(run_id, {"outcome": outcome.value, "report_dir": report_dir, "updated_at": at}, token=token)

    def heartbeat(self, run_id: str, *, token: int, at: float) -> None:
        self._db.heartbeat(run_id, token=token, at=at)

    def take_over(self, run_id: str, *, owner: str, expected_token: int, at: float) -> int:
        """Become the run's owner if nobody else did since ``expected_token``; journaled as an action."""
        event = records.action(
            run_id,
            at,
            "ownership.take-over",
            actor=owner,
            trigger="take over",
            expected=f"token {expected_token} -> {expected_token + 1}",
            actual=f"{owner} owns the run",
        )
        return self._db.take_over(run_id, owner=owner, expected_token=expected_token, at=at, event=_event_row(event))

    def lock_target(self, target_key: str, *, run_id: str, at: float) -> str | None:
        return self._db.lock_target(target_key, run_id=run_id, at=at, finished=_FINISHED)

    def unlock_target(self, target_key: str, *, run_id: str) -> None:
        self._db.unlock_target(target_key, run_id=run_id)

    # -- events ------------------------------------------------------------------------------------

    def append(self, event: records.Event, *, token: int | None = None) -> int:
        return self._db.append([_event_row(event)], token=token)[0]

    def append_all(self, events: Sequence[records.Event], *, token: int | None = None) -> list[int]:
        return self._db.append([_event_row(e) for e in events], token=token)

    def events(
        self, run_id: str, *, after_seq: int = 0, kinds: Sequence[records.EventKind] = ()
    ) -> list[records.Event]:
        return [_event(r) for r in self._db.events(run_id, after_seq=after_seq, kinds=[k.value for k in kinds])]

    def take_commands(self, run_id: str, *, token: int) -> list[records.Event]:
        rows = self._db.take_events(run_id, kind=records.EventKind.COMMAND.value, token=token)
        return [_event(r) for r in rows]

    def export_jsonl(self, run_id: str, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as out:
            for event in self.events(run_id):
                out.write(json.dumps(event.to_json(), sort_keys=True) + "\n")

    # -- suspensions -------------------------------------------------------------------------------

    def record_intent(
        self, suspension: records.SuspensionRecord, event: records.Event, *, token: int | None = None
    ) -> None:
        self.record_intents([(suspension, event)], token=token)

    def record_intents(
        self, items: Sequence[tuple[records.SuspensionRecord, records.Event]], *, token: int | None = None
    ) -> None:
        self._db.insert_suspensions([(_suspension_row(s), _event_row(e)) for s, e in items], token=token)

    def record_prior(self, run_id: str, policy: str, prior: dict[str, Any], *, token: int | None = None) -> None:
        self.record_priors(run_id, [(policy, prior)], token=token)

    def record_priors(
        self, run_id: str, priors: Sequence[tuple[str, dict[str, Any]]], *, token: int | None = None
    ) -> None:
        self._db.set_priors(
            run_id, [(policy, json.dumps(prior, sort_keys=True)) for policy, prior in priors], token=token
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
        token: int | None = None,
        expect: Collection[records.SuspensionState] = (),
    ) -> None:
        update = journal_base.SuspensionUpdate(policy, state, at=at, detail=detail, event=event, expect=expect)
        self.update_suspensions(run_id, [update], token=token)

    def update_suspensions(
        self, run_id: str, updates: Sequence[journal_base.SuspensionUpdate], *, token: int | None = None
    ) -> None:
        self._db.update_suspensions(run_id, [_update(u) for u in updates], token=token)

    def suspensions(self, run_id: str | None = None, *, unrestored: bool = False) -> list[records.SuspensionRecord]:
        rows = self._db.suspensions(run_id=run_id, states=_UNRESTORED if unrestored else ())
        return [_suspension(r) for r in rows]


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _event_row(event: records.Event) -> dict[str, Any]:
    """The journal's door: every text of every event passes the one redaction before it is stored."""
    return {
        "run_id": event.run_id,
        "at": event.at,
        "kind": event.kind.value,
        "name": redaction.clean(event.name),
        "actor": redaction.clean(event.actor),
        "trigger": redaction.clean(event.trigger),
        "expected": redaction.clean(event.expected),
        "actual": redaction.clean(event.actual),
        "duration_s": event.duration_s,
        "data": _dumps(redaction.clean_value(event.data)),
    }


def _suspension_row(suspension: records.SuspensionRecord) -> dict[str, Any]:
    return {
        "run_id": suspension.run_id,
        "policy": suspension.policy,
        "kind": suspension.kind,
        "target_key": suspension.target_key,
        "prior": suspension.prior_json(),
        "deadline_at": suspension.deadline_at,
        "state": suspension.state.value,
        "updated_at": suspension.updated_at,
        "detail": suspension.detail,
        "prior_known": 1 if suspension.prior_known else 0,
    }


def _update(update: journal_base.SuspensionUpdate) -> journalsuspensions.Update:
    return journalsuspensions.Update(
        update.policy,
        update.state.value,
        update.at,
        redaction.clean(update.detail),
        _event_row(update.event),
        [s.value for s in update.expect],
    )


def _event(row: dict[str, Any]) -> records.Event:
    return records.Event(
        seq=int(row["seq"]),
        run_id=row["run_id"],
        at=row["at"],
        kind=records.EventKind(row["kind"]),
        name=row["name"],
        actor=row["actor"],
        trigger=row["trigger"],
        expected=row["expected"],
        actual=row["actual"],
        duration_s=row["duration_s"],
        data=json.loads(row["data"]),
    )


def _run(row: dict[str, Any]) -> records.RunRecord:
    return records.RunRecord(
        run_id=row["run_id"],
        drill_name=row["drill_name"],
        drill_path=row["drill_path"],
        mode=records.RunMode(row["mode"]),
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
        owner=row["owner"],
        token=int(row["token"]),
        heartbeat_at=float(row["heartbeat_at"]),
    )


def _suspension(row: dict[str, Any]) -> records.SuspensionRecord:
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
        prior_known=bool(row["prior_known"]),
    )
