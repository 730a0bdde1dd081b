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

from orchestrator import errors
from orchestrator.adapters.sqldb import Transaction

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
    """The statements on the ``suspensions`` and ``events`` tables; ``where`` names the journal in messages."""

    def __init__(self, *, where: str) -> None:
        self._where = where

    def _locked(self, tx: Transaction, run_id: str, policy: str) -> Row:
        """The suspension's state and prior, its row locked for this transaction (PostgreSQL)."""
        row = tx.first(
            f"SELECT state, prior, prior_known FROM suspensions WHERE run_id = ? AND policy = ?{tx.dialect.for_update}",
            [run_id, policy],
        )
        if row is None:
            raise errors.JournalError(f"no suspension of {policy} recorded for run {run_id} in {self._where}")
        return row

    def last_ordinal(self, tx: Transaction, run_id: str) -> int:
        """The ordinal of the run's latest intent (0: none yet)."""
        return int(tx.scalar("SELECT coalesce(max(ordinal), 0) FROM suspensions WHERE run_id = ?", [run_id]))

    def insert(self, tx: Transaction, suspension: Row, event: Row) -> None:
        """The intent: a new suspension row and its event; never over an existing one."""
        run_id, policy = str(suspension["run_id"]), str(suspension["policy"])
        if tx.first("SELECT state FROM suspensions WHERE run_id = ? AND policy = ?", [run_id, policy]) is not None:
            raise errors.JournalError(
                f"an intent for {policy} of run {run_id} is already recorded; its prior value is never overwritten"
            )
        tx.insert("suspensions", suspension)
        tx.insert("events", event)

    def set_prior(self, tx: Transaction, run_id: str, policy: str, prior: str) -> None:
        """The prior value, written once: the same value again is a no-op, another one is refused."""
        current = self._locked(tx, run_id, policy)
        if current["prior_known"]:
            if current["prior"] == prior:
                return
            raise errors.JournalError(
                f"the prior of {policy} for run {run_id} is already recorded; it is never replaced"
            )
        tx.execute(
            "UPDATE suspensions SET prior = ?, prior_known = 1 WHERE run_id = ? AND policy = ?", [prior, run_id, policy]
        )

    def update(self, tx: Transaction, run_id: str, update: Update) -> None:
        """A state change and its event; compare-and-set when ``update.expect`` names states."""
        current = self._locked(tx, run_id, update.policy)
        if update.expect and current["state"] not in update.expect:
            raise errors.StateConflictError(
                f"the suspension of {update.policy} for run {run_id} is {current['state']},"
                f" not {' or '.join(sorted(update.expect))}; not moved to {update.state}"
            )
        tx.execute(
            "UPDATE suspensions SET state = ?, updated_at = ?, detail = ? WHERE run_id = ? AND policy = ?",
            [update.state, update.updated_at, update.detail, run_id, update.policy],
        )
        tx.insert("events", update.event)
