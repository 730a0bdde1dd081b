"""Batch suspension writes, on SQLite and on PostgreSQL: exactly the singles in order, in one transaction.

``record_intents``, ``record_priors`` and ``update_suspensions`` must leave the journal as calling
``record_intent``, ``record_prior`` and ``update_suspension`` for each item would, raise what the
first refused single would raise, and write nothing of a batch that is refused anywhere.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest

from orchestrator import errors, records
from orchestrator.journal import base as journal_base
from orchestrator.journal import store as journal_store
from tests.unit.journal.builders import make_run

SS = records.SuspensionState
SECRET = "hunter2-batch-secret"
Snapshot = tuple[list[records.SuspensionRecord], list[records.Event]]


@pytest.fixture
def store(journal_url: str) -> Iterator[journal_base.JournalStore]:
    journal = journal_store.open_journal(journal_url)
    yield journal
    journal.close()


# -- a run's suspension steps, for any run id --------------------------------------------------------


def event(run_id: str, name: str, at: float, **data: Any) -> records.Event:
    return records.action(
        run_id, at, name, actor="drill", trigger=f"run with password={SECRET}", actual=f"token: {SECRET}", **data
    )


def suspension(run_id: str, policy: str, *, prior_known: bool, detail: str = "") -> records.SuspensionRecord:
    return records.SuspensionRecord(
        run_id=run_id,
        policy=policy,
        kind="sandbox-autorestart",
        target_key="sandbox:/tmp/x",
        prior={"autorestart": True, "n": len(policy)} if prior_known else {},
        deadline_at=160.0,
        state=SS.INTENDED,
        updated_at=101.0,
        detail=detail,
        prior_known=prior_known,
    )


POLICIES = [f"p{i}" for i in range(6)]


def intents(run_id: str, policies: list[str] = POLICIES) -> list[tuple[records.SuspensionRecord, records.Event]]:
    """Every other policy's prior is not known yet (the intent came before the read)."""
    return [
        (
            suspension(run_id, p, prior_known=i % 2 == 0),
            event(run_id, "suspend.intent", 101.0 + i, policy=p, password=SECRET),
        )
        for i, p in enumerate(policies)
    ]


def priors(policies: list[str] = POLICIES) -> list[tuple[str, dict[str, Any]]]:
    """Priors for every policy: a no-op where already known (the same value), written where not."""
    return [
        (p, {"autorestart": True, "n": len(p)} if i % 2 == 0 else {"autorestart": i}) for i, p in enumerate(policies)
    ]


def updates(run_id: str, policies: list[str] = POLICIES) -> list[journal_base.SuspensionUpdate]:
    return [
        journal_base.SuspensionUpdate(
            p,
            SS.SUSPENDED,
            at=110.0 + i,
            detail=f"off; token={SECRET}",
            event=event(run_id, "suspend.done", 110.0 + i, policy=p),
            expect=(SS.INTENDED,),
        )
        for i, p in enumerate(policies)
    ]


def snapshot(store: journal_base.JournalStore, run_id: str) -> Snapshot:
    """The run's suspensions and events, with the run id and sequence numbers taken out."""
    return (
        [dataclasses.replace(s, run_id="R") for s in store.suspensions(run_id)],
        [dataclasses.replace(e, run_id="R", seq=0) for e in store.events(run_id)],
    )


def new_run(store: journal_base.JournalStore, run_id: str) -> None:
    store.create_run(make_run(run_id))


# -- equivalence -----------------------------------------------------------------------------------


def test_each_batch_leaves_the_journal_as_the_singles_do(store: journal_base.JournalStore) -> None:
    new_run(store, "singles")
    new_run(store, "batches")

    for item, ev in intents("singles"):
        store.record_intent(item, ev, token=1)
    store.record_intents(intents("batches"), token=1)
    assert snapshot(store, "singles") == snapshot(store, "batches")

    for policy, prior in priors():
        store.record_prior("singles", policy, prior, token=1)
    store.record_priors("batches", priors(), token=1)
    assert snapshot(store, "singles") == snapshot(store, "batches")

    for u in updates("singles"):
        store.update_suspension(
            "singles", u.policy, u.state, at=u.at, detail=u.detail, event=u.event, token=1, expect=u.expect
        )
    store.update_suspensions("batches", updates("batches"), token=1)
    suspended, events = snapshot(store, "batches")
    assert (suspended, events) == snapshot(store, "singles")

    assert [s.policy for s in suspended] == POLICIES
    assert all(s.state is SS.SUSPENDED and s.prior_known for s in suspended)
    assert [s.prior for s in suspended][:2] == [{"autorestart": True, "n": 2}, {"autorestart": 1}]
    names = [e.name for e in events]
    assert names == ["planned"] + ["suspend.intent"] * 6 + ["suspend.done"] * 6  # in item order
    assert [e.data["policy"] for e in events[1:]] == POLICIES * 2


def test_redaction_at_the_door_applies_to_every_item(store: journal_base.JournalStore) -> None:
    new_run(store, "d-1")
    store.record_intents(intents("d-1"), token=1)
    store.record_priors("d-1", priors(), token=1)
    store.update_suspensions("d-1", updates("d-1"), token=1)
    stored = [(s.detail, s.prior) for s in store.suspensions("d-1")]
    events = store.events("d-1")
    assert len(events) == 13 and SECRET not in repr(stored) + repr(events)
    assert all(e.data.get("password") == "<redacted>" for e in events if e.name == "suspend.intent")
    assert {s.detail for s in store.suspensions("d-1")} == {"off; token=<redacted>"}


def test_a_batch_is_one_transaction(store: journal_base.JournalStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """One commit (one fsync) for the whole batch, whatever its size."""
    new_run(store, "d-1")
    database = cast(journal_store.SqlJournal, store)._db._db
    commits: list[int] = []
    commit = database._commit

    def count(conn: object) -> None:
        commits.append(1)
        commit(conn)

    monkeypatch.setattr(database, "_commit", count)
    many = [f"p{i:03}" for i in range(150)]
    store.record_intents(intents("d-1", many), token=1)
    store.record_priors("d-1", priors(many), token=1)
    store.update_suspensions("d-1", updates("d-1", many), token=1)
    monkeypatch.undo()
    assert len(commits) == 3
    assert len(store.suspensions("d-1")) == 150 and len(store.events("d-1")) == 301


def test_an_empty_batch_is_a_no_op(store: journal_base.JournalStore, journal_url: str) -> None:
    new_run(store, "d-1")
    before = snapshot(store, "d-1")
    store.record_intents([], token=1)
    store.record_priors("d-1", [], token=1)
    store.update_suspensions("d-1", [], token=1)
    store.update_suspensions("no-such-run", [], token=99)  # checks nothing either
    reader = journal_store.open_journal(journal_url, read_only=True)
    try:
        reader.record_intents([])
        reader.record_priors("d-1", [])
        reader.update_suspensions("d-1", [])
    finally:
        reader.close()
    assert snapshot(store, "d-1") == before


def test_a_read_only_journal_refuses_every_batch(store: journal_base.JournalStore, journal_url: str) -> None:
    new_run(store, "d-1")
    reader = journal_store.open_journal(journal_url, read_only=True)
    try:
        writes: list[Callable[[], object]] = [
            lambda: reader.record_intents(intents("d-1")),
            lambda: reader.record_priors("d-1", priors()),
            lambda: reader.update_suspensions("d-1", updates("d-1")),
        ]
        for write in writes:
            with pytest.raises(errors.JournalReadOnlyError):
                write()
    finally:
        reader.close()


# -- fencing ---------------------------------------------------------------------------------------


def test_a_stale_token_writes_nothing_of_the_batch(store: journal_base.JournalStore) -> None:
    new_run(store, "d-1")
    store.record_intents(intents("d-1", ["p0", "p1"]), token=1)
    store.take_over("d-1", owner="b", expected_token=1, at=105.0)
    before = snapshot(store, "d-1")
    stale: list[Callable[[], object]] = [
        lambda: store.record_intents(intents("d-1", ["q0", "q1"]), token=1),
        lambda: store.record_priors("d-1", priors(["p0", "p1"]), token=1),
        lambda: store.update_suspensions("d-1", updates("d-1", ["p0", "p1"]), token=1),
    ]
    for write in stale:
        with pytest.raises(errors.OwnershipLostError, match="taken over by b"):
            write()
    assert snapshot(store, "d-1") == before
    store.record_priors("d-1", priors(["p0", "p1"]), token=2)  # the new owner's token writes
    store.update_suspensions("d-1", updates("d-1", ["p0", "p1"]), token=2)
    assert [s.state for s in store.suspensions("d-1")] == [SS.SUSPENDED, SS.SUSPENDED]


def test_intents_of_two_runs_are_fenced_per_run_and_refused_whole(store: journal_base.JournalStore) -> None:
    """The singles would fence each item's run; the batch does, and a stale one anywhere refuses all."""
    new_run(store, "a")
    new_run(store, "b")
    store.take_over("b", owner="other", expected_token=1, at=105.0)
    before = (snapshot(store, "a"), snapshot(store, "b"))
    with pytest.raises(errors.OwnershipLostError, match="run b was taken over"):
        store.record_intents(intents("a", ["p0"]) + intents("b", ["p0"]), token=1)
    assert (snapshot(store, "a"), snapshot(store, "b")) == before
    store.record_intents(intents("a", ["p1"]) + intents("b", ["p1"]))  # no token: not fenced
    assert [len(store.suspensions(r)) for r in ("a", "b")] == [1, 1]


# -- write-once priors -----------------------------------------------------------------------------


def test_priors_in_a_batch_are_written_once(store: journal_base.JournalStore) -> None:
    new_run(store, "d-1")
    store.record_intents(intents("d-1", ["p0", "p1", "p2"]), token=1)  # p1's prior is not known
    store.record_priors("d-1", [("p1", {"a": 1}), ("p1", {"a": 1}), ("p0", {"autorestart": True, "n": 2})])
    [p0, p1, _] = store.suspensions("d-1")
    assert (p0.prior, p1.prior, p1.prior_known) == ({"autorestart": True, "n": 2}, {"a": 1}, True)
    with pytest.raises(errors.JournalError, match="prior of p1 for run d-1 is already recorded"):
        store.record_priors("d-1", [("p1", {"a": 2})])
    store.record_intent(suspension("d-1", "p5", prior_known=False), event("d-1", "suspend.intent", 102.0))
    before = snapshot(store, "d-1")
    with pytest.raises(errors.JournalError, match="prior of p5 for run d-1 is already recorded"):
        store.record_priors("d-1", [("p5", {"first": 1}), ("p5", {"second": 2})])
    assert snapshot(store, "d-1") == before  # the first prior of p5 is rolled back with the batch
    assert not store.suspensions("d-1")[-1].prior_known


# -- a refused item refuses the whole batch, with the single's error ---------------------------------


Refused = Callable[[journal_base.JournalStore, str, bool], None]


def refused_intent(run_id: str, policy: str) -> Refused:
    """An intent for ``policy`` of ``run_id`` ("RUN": the run under test) between two good ones."""

    def write(store: journal_base.JournalStore, run: str, batch: bool) -> None:
        [bad] = intents(run_id.replace("RUN", run), [policy])
        if batch:
            store.record_intents([*intents(run, ["n0"]), bad, *intents(run, ["n1"])], token=1)
        else:
            store.record_intent(*bad, token=1)

    return write


def refused_prior(policy: str, prior: dict[str, Any]) -> Refused:
    def write(store: journal_base.JournalStore, run: str, batch: bool) -> None:
        if batch:
            store.record_priors(run, [("p1", {"good": 1}), (policy, prior), ("p3", {"good": 3})], token=1)
        else:
            store.record_prior(run, policy, prior, token=1)

    return write


def refused_update(policy: str, expect: tuple[records.SuspensionState, ...]) -> Refused:
    def write(store: journal_base.JournalStore, run: str, batch: bool) -> None:
        [good_before, good_after] = updates(run, ["p0", "p2"])
        bad = dataclasses.replace(updates(run, [policy])[0], expect=expect)
        if batch:
            store.update_suspensions(run, [good_before, bad, good_after], token=1)
        else:
            store.update_suspension(
                run, bad.policy, bad.state, at=bad.at, detail=bad.detail, event=bad.event, token=1, expect=bad.expect
            )

    return write


@pytest.mark.parametrize(
    ("write", "error", "message"),
    [
        (refused_intent("RUN", "p2"), errors.JournalError, "an intent for p2 of run d-1 is already recorded"),
        (refused_intent("nope", "p9"), errors.RunNotFoundError, "no run 'nope'"),
        (refused_prior("p0", {"other": 0}), errors.JournalError, "prior of p0 for run d-1 is already recorded"),
        (refused_prior("zz", {}), errors.JournalError, "no suspension of zz recorded for run d-1"),
        (refused_update("p1", (SS.RESTORING,)), errors.StateConflictError, "p1 for run d-1 is intended, not restoring"),
        (refused_update("zz", ()), errors.JournalError, "no suspension of zz recorded for run d-1"),
    ],
    ids=["intent-twice", "intent-unknown-run", "prior-replaced", "prior-unknown", "update-conflict", "update-unknown"],
)
def test_a_refused_item_in_the_middle_rolls_back_the_whole_batch(
    store: journal_base.JournalStore, write: Refused, error: type[errors.JournalError], message: str
) -> None:
    new_run(store, "d-1")
    store.record_intents(intents("d-1", ["p0", "p1", "p2", "p3"]), token=1)  # p1, p3: prior unknown
    before = snapshot(store, "d-1")
    with pytest.raises(error, match=message) as batch:
        write(store, "d-1", True)
    assert snapshot(store, "d-1") == before  # nothing of the batch: not its good items either
    with pytest.raises(error) as single:
        write(store, "d-1", False)
    assert type(batch.value) is type(single.value) and str(batch.value) == str(single.value)
    assert snapshot(store, "d-1") == before
