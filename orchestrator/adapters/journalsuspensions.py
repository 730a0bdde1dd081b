"""The journal's suspension statements, one item at a time, on a transaction the caller holds.

``journaldb.JournalDb`` opens the transaction and fences it by the run's token; the statements here
write one suspension each (an intent, a prior, a state change) and raise the journal's own errors
when the item is refused. A single write and a batch run the same function, once or once per item,
so a batch means exactly the sequence of singles, in one transaction: an item refused rolls back
the whole batch.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, NamedTuple

import sqlalchemy as sa

from orchestrator import errors

Row = dict[str, Any]


class Update(NamedTuple):
    """One state change of one suspension, its event, and the states it may come from (any if empty)."""

    policy: str
    state: str
    updated_at: float
    detail: str
    event: Row
    expect: Collection[str] = ()


class SuspensionStatements:
    """The statements on the ``suspensions`` and ``events`` tables; ``where`` names the journal in messages.

    Each statement is built once and executed with its parameters: a batch of thousands of items
    pays for running them, not for building and caching thousands of equal statements.
    """

    def __init__(self, suspensions: sa.Table, events: sa.Table, *, where: str) -> None:
        self._where = where
        key = (suspensions.c.run_id == sa.bindparam("key_run_id"), suspensions.c.policy == sa.bindparam("key_policy"))
        self._exists = sa.select(suspensions.c.state).where(*key)
        self._last_ordinal = sa.select(sa.func.coalesce(sa.func.max(suspensions.c.ordinal), 0)).where(
            suspensions.c.run_id == sa.bindparam("key_run_id")
        )
        current = (suspensions.c.state, suspensions.c.prior, suspensions.c.prior_known)
        self._current = sa.select(*current).where(*key).with_for_update()
        self._insert = suspensions.insert()
        self._insert_event = events.insert()
        self._set_prior = suspensions.update().where(*key).values(prior=sa.bindparam("new_prior"), prior_known=1)
        self._set_state = (
            suspensions.update()
            .where(*key)
            .values(
                state=sa.bindparam("new_state"),
                updated_at=sa.bindparam("new_updated_at"),
                detail=sa.bindparam("new_detail"),
            )
        )

    def _locked(self, conn: sa.Connection, run_id: str, policy: str) -> sa.RowMapping:
        """The suspension's state and prior, its row locked for this transaction (PostgreSQL)."""
        row = conn.execute(self._current, {"key_run_id": run_id, "key_policy": policy}).first()
        if row is None:
            raise errors.JournalError(f"no suspension of {policy} recorded for run {run_id} in {self._where}")
        return row._mapping

    def last_ordinal(self, conn: sa.Connection, run_id: str) -> int:
        """The ordinal of the run's latest intent (0: none yet)."""
        return int(conn.execute(self._last_ordinal, {"key_run_id": run_id}).scalar_one())

    def insert(self, conn: sa.Connection, suspension: Row, event: Row) -> None:
        """The intent: a new suspension row and its event; never over an existing one."""
        run_id, policy = str(suspension["run_id"]), str(suspension["policy"])
        if conn.execute(self._exists, {"key_run_id": run_id, "key_policy": policy}).first() is not None:
            raise errors.JournalError(
                f"an intent for {policy} of run {run_id} is already recorded; its prior value is never overwritten"
            )
        conn.execute(self._insert, suspension)
        conn.execute(self._insert_event, event)

    def set_prior(self, conn: sa.Connection, run_id: str, policy: str, prior: str) -> None:
        """The prior value, written once: the same value again is a no-op, another one is refused."""
        current = self._locked(conn, run_id, policy)
        if current["prior_known"]:
            if current["prior"] == prior:
                return
            raise errors.JournalError(
                f"the prior of {policy} for run {run_id} is already recorded; it is never replaced"
            )
        conn.execute(self._set_prior, {"key_run_id": run_id, "key_policy": policy, "new_prior": prior})

    def update(self, conn: sa.Connection, run_id: str, update: Update) -> None:
        """A state change and its event; compare-and-set when ``update.expect`` names states."""
        current = self._locked(conn, run_id, update.policy)
        if update.expect and current["state"] not in update.expect:
            raise errors.StateConflictError(
                f"the suspension of {update.policy} for run {run_id} is {current['state']},"
                f" not {' or '.join(sorted(update.expect))}; not moved to {update.state}"
            )
        conn.execute(
            self._set_state,
            {
                "key_run_id": run_id,
                "key_policy": update.policy,
                "new_state": update.state,
                "new_updated_at": update.updated_at,
                "new_detail": update.detail,
            },
        )
        conn.execute(self._insert_event, update.event)
