"""The JournalStore contract, run on SQLite and on PostgreSQL alike (one parametrized ``store``)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from orchestrator import errors, records
from orchestrator.journal import base as journal_base
from orchestrator.journal import store as journal_store
from tests.conftest import REPO
from tests.unit.journal.builders import make_run, make_suspension

S = records.RunState
SS = records.SuspensionState
CMD = records.EventKind.COMMAND


def action(run_id: str = "d-1", name: str = "x") -> records.Event:
    return records.action(run_id, 101.0, name, actor="drill", trigger="test")


def command(run_id: str, name: str, **data: Any) -> records.Event:
    return records.Event(run_id=run_id, at=102.0, kind=CMD, name=name, actor="alice", data=dict(data))


@pytest.fixture
def store(journal_url: str) -> Iterator[journal_base.JournalStore]:
    journal = journal_store.open_journal(journal_url)
    yield journal
    journal.close()


@pytest.fixture
def opener(journal_url: str) -> Iterator[Callable[..., journal_base.JournalStore]]:
    """More stores on the same journal (separate connections, as other processes would have)."""
    opened: list[journal_base.JournalStore] = []

    def open_(*, read_only: bool = False) -> journal_base.JournalStore:
        opened.append(journal_store.open_journal(journal_url, read_only=read_only))
        return opened[-1]

    yield open_
    for journal in opened:
        journal.close()


def active_run(store: journal_base.JournalStore, run_id: str, at: float = 100.0) -> None:
    store.create_run(make_run(run_id, at=at))
    store.set_state(run_id, S.RESPONDING, actor="drill", trigger="test", at=at + 1)


# -- runs ------------------------------------------------------------------------------------------


def test_create_get_and_the_creation_event(store: journal_base.JournalStore) -> None:
    store.create_run(make_run())
    run = store.get_run("d-1")
    assert run.run_id == "d-1" and run.state is S.PLANNED
    assert (run.mode, run.owner, run.token, run.heartbeat_at) == (records.RunMode.NO_AUTOMATION, "host:1", 1, 100.0)
    assert run.definition == {"k": 1} and run.experiment == {"title": "t"}
    [created] = store.events("d-1")
    assert (created.kind, created.name, created.actor) == (records.EventKind.TRANSITION, "planned", "drill")
    with pytest.raises(errors.RunNotFoundError, match="no run 'zzz'"):
        store.get_run("zzz")
    with pytest.raises(errors.JournalError):
        store.create_run(make_run())  # the same id twice


def test_resolve_by_exact_id_literal_prefix_latest_and_active(store: journal_base.JournalStore) -> None:
    for i, run_id in enumerate(["alpha_1", "alpha_10", "alphaX1", "beta-1", "a%b"]):
        store.create_run(make_run(run_id, at=100.0 + i))
    assert store.resolve_run("alpha_1").run_id == "alpha_1"  # exact, although also a prefix of alpha_10
    assert store.resolve_run("beta").run_id == "beta-1"
    assert store.resolve_run("a%").run_id == "a%b"  # '%' is a plain character, not a wildcard
    with pytest.raises(errors.RunNotFoundError, match="no run 'alpha%'"):
        store.resolve_run("alpha%")
    assert store.resolve_run("alphaX").run_id == "alphaX1"
    with pytest.raises(errors.RunNotFoundError, match=r"'alpha_' matches 2 runs \(alpha_10, alpha_1\)"):
        store.resolve_run("alpha_")  # '_' does not match the X of alphaX1
    assert store.resolve_run("latest").run_id == "a%b"
    with pytest.raises(errors.RunNotFoundError, match="no run is in progress"):
        store.resolve_run(None)
    store.set_state("alpha_10", S.RESPONDING, actor="drill", trigger="t", at=250.0)
    assert store.resolve_run(None).run_id == store.resolve_run("").run_id == store.resolve_run("active").run_id
    assert store.resolve_run("active").run_id == "alpha_10"
    store.set_state("beta-1", S.INJECTING, actor="drill", trigger="t", at=250.0)
    with pytest.raises(errors.RunNotFoundError, match=r"several runs are in progress \(beta-1, alpha_10\)"):
        store.resolve_run(None)


def test_active_runs_are_found_among_all_runs(store: journal_base.JournalStore) -> None:
    active_run(store, "oldest", at=1.0)
    for i in range(300):
        store.create_run(make_run(f"r-{i:03d}", at=10.0 + i))
    assert [r.run_id for r in store.list_runs(active_only=True)] == ["oldest"]
    assert store.resolve_run(None).run_id == "oldest"
    assert len(store.list_runs()) == 50
    assert store.list_runs(limit=2)[0].run_id == "r-299"


# -- state, fencing, ownership ---------------------------------------------------------------------


def test_set_state_is_fenced_and_compare_and_set(store: journal_base.JournalStore) -> None:
    store.create_run(make_run())
    store.set_state("d-1", S.PREFLIGHT, actor="drill", trigger="t", at=101.0, token=1, expect=[S.PLANNED])
    with pytest.raises(errors.StateConflictError, match="is preflight"):
        store.set_state("d-1", S.SUSPENDING, actor="drill", trigger="t", at=102.0, expect=[S.PLANNED])
    assert store.take_over("d-1", owner="other:2", expected_token=1, at=103.0) == 2
    with pytest.raises(errors.OwnershipLostError):
        store.set_state("d-1", S.SUSPENDING, actor="drill", trigger="t", at=104.0, token=1)
    with pytest.raises(errors.OwnershipLostError):
        store.finish("d-1", outcome=records.Outcome.ABORTED, report_dir=None, at=104.0, token=1)
    with pytest.raises(errors.OwnershipLostError):
        store.append(action(), token=1)
    run = store.get_run("d-1")
    assert (run.state, run.outcome, run.owner, run.token) == (S.PREFLIGHT, None, "other:2", 2)
    store.set_state("d-1", S.ABORTING, actor="drill", trigger="t", at=105.0, token=2, expect=[S.PREFLIGHT])
    store.finish("d-1", outcome=records.Outcome.ABORTED, report_dir="/r", at=106.0, token=2)
    run = store.get_run("d-1")
    assert (run.state, run.outcome, run.report_dir, run.updated_at) == (
        S.ABORTING,
        records.Outcome.ABORTED,
        "/r",
        106.0,
    )
    names = [e.name for e in store.events("d-1")]
    assert names == ["planned", "preflight", "ownership.take-over", "aborting"]  # refused writes left nothing
    with pytest.raises(errors.RunNotFoundError):
        store.set_state("nope", S.DONE, actor="drill", trigger="t", at=1.0)


def test_heartbeat_is_fenced_after_a_take_over(store: journal_base.JournalStore) -> None:
    store.create_run(make_run())
    store.heartbeat("d-1", token=1, at=110.0)
    assert store.get_run("d-1").heartbeat_at == 110.0
    with pytest.raises(errors.OwnershipLostError, match="taken over"):
        store.heartbeat("d-1", token=7, at=111.0)
    assert store.take_over("d-1", owner="b", expected_token=1, at=120.0) == 2
    with pytest.raises(errors.OwnershipLostError):
        store.heartbeat("d-1", token=1, at=121.0)
    with pytest.raises(errors.OwnershipLostError, match="held by b with token 2"):
        store.take_over("d-1", owner="c", expected_token=1, at=122.0)
    store.heartbeat("d-1", token=2, at=123.0)
    assert (store.get_run("d-1").heartbeat_at, store.get_run("d-1").owner) == (123.0, "b")


def test_concurrent_take_overs_with_the_same_token_exactly_one_wins(
    store: journal_base.JournalStore, opener: Callable[..., journal_base.JournalStore]
) -> None:
    store.create_run(make_run())
    contenders = [opener(), opener()]
    token = 1
    for _ in range(10):
        barrier = threading.Barrier(2, timeout=30)

        def contend(
            journal: journal_base.JournalStore, name: str, expected: int, barrier: threading.Barrier = barrier
        ) -> int | None:
            barrier.wait()
            try:
                return journal.take_over("d-1", owner=name, expected_token=expected, at=200.0 + expected)
            except errors.OwnershipLostError:
                return None

        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(contend, contenders, ["a", "b"], [token, token]))
        assert sorted(results, key=str) == sorted([token + 1, None], key=str), results
        token += 1
        assert store.get_run("d-1").token == token
        assert store.get_run("d-1").owner == ["a", "b"][results.index(token)]


# -- target locks ----------------------------------------------------------------------------------


def test_two_runs_racing_for_a_target_exactly_one_holds(
    store: journal_base.JournalStore, opener: Callable[..., journal_base.JournalStore]
) -> None:
    active_run(store, "r1")
    active_run(store, "r2")
    racers = [opener(), opener()]
    for round_ in range(20):
        key = f"sandbox:/t/{round_}"
        barrier = threading.Barrier(2, timeout=30)

        def race(
            journal: journal_base.JournalStore, run_id: str, key: str = key, barrier: threading.Barrier = barrier
        ) -> str | None:
            barrier.wait()
            return journal.lock_target(key, run_id=run_id, at=300.0)

        with ThreadPoolExecutor(2) as pool:
            holders = list(pool.map(race, racers, ["r1", "r2"]))
        assert holders.count(None) == 1, holders
        winner = ["r1", "r2"][holders.index(None)]
        assert [h for h in holders if h is not None] == [winner]
        assert store.lock_target(key, run_id=winner, at=301.0) is None  # the holder may lock again


def test_a_lock_is_freed_by_unlock_or_when_its_holder_is_no_longer_active(store: journal_base.JournalStore) -> None:
    active_run(store, "r1")
    active_run(store, "r2")
    assert store.lock_target("t", run_id="r1", at=1.0) is None
    assert store.lock_target("t", run_id="r2", at=2.0) == "r1"
    store.unlock_target("t", run_id="r2")  # not the holder: nothing released
    assert store.lock_target("t", run_id="r2", at=3.0) == "r1"
    store.set_state("r1", S.DONE, actor="drill", trigger="t", at=4.0)
    assert store.lock_target("t", run_id="r2", at=5.0) is None  # a finished holder is taken over
    store.unlock_target("t", run_id="r2")
    assert store.lock_target("t", run_id="ghost", at=6.0) is None  # holder with no run row
    assert store.lock_target("t", run_id="r2", at=7.0) is None
    active_run(store, "r3")
    assert store.lock_target("t", run_id="r3", at=8.0) == "r2"  # active (even if crashed): still blocks
    store.set_state("r2", S.FAILED, actor="drill", trigger="t", at=9.0)
    assert store.lock_target("t", run_id="r3", at=10.0) is None


# -- events and commands ---------------------------------------------------------------------------


def test_events_filter_by_kind_and_sequence_and_export(store: journal_base.JournalStore, tmp_path: Path) -> None:
    store.create_run(make_run())
    seq = store.append(command("d-1", "ack"))
    store.append(records.action("d-1", 103.0, "probe", actor="drill", trigger="t", duration_s=0.5, detail="ok"))
    commands = store.events("d-1", kinds=[CMD])
    assert [(c.seq, c.name, c.actor) for c in commands] == [(seq, "ack", "alice")]
    assert store.events("d-1", after_seq=seq, kinds=[CMD]) == []
    [probe] = store.events("d-1", after_seq=seq)
    assert (probe.duration_s, probe.data) == (0.5, {"detail": "ok"})
    out = tmp_path / "j.jsonl"
    store.export_jsonl("d-1", out)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["kind"] for line in lines] == ["transition", "command", "action"]
    for line in lines:
        assert {"name", "trigger", "expected", "actual", "duration_s", "actor", "at", "seq"} <= set(line)


def test_append_all_writes_every_event_in_order_or_none(store: journal_base.JournalStore) -> None:
    store.create_run(make_run())
    seqs = store.append_all([command("d-1", "ack"), action(), command("d-1", "note", text="hi")], token=1)
    assert seqs == sorted(seqs) and len(set(seqs)) == 3
    assert [(e.seq, e.name) for e in store.events("d-1", after_seq=seqs[0] - 1)] == list(
        zip(seqs, ["ack", "x", "note"], strict=True)
    )
    assert store.append_all([], token=99) == []  # checks nothing, writes nothing
    store.take_over("d-1", owner="b", expected_token=1, at=1.0)
    before = store.events("d-1")
    with pytest.raises(errors.OwnershipLostError):
        store.append_all([action(), action()], token=1)  # the stale owner writes none of them
    with pytest.raises(errors.JournalError):
        store.append_all([action(), command("no-such-run", "ack")])  # the second is refused: the first is not kept
    assert store.events("d-1") == before


def test_take_commands_delivers_each_command_once_in_seq_order(store: journal_base.JournalStore) -> None:
    store.create_run(make_run())
    first = store.append(command("d-1", "ack"))
    store.append(action())
    second = store.append(command("d-1", "note", text="hi"))
    taken = store.take_commands("d-1", token=1)
    assert [(c.seq, c.name, c.data) for c in taken] == [(first, "ack", {}), (second, "note", {"text": "hi"})]
    assert store.take_commands("d-1", token=1) == []
    store.take_over("d-1", owner="b", expected_token=1, at=1.0)
    store.append(command("d-1", "abort"))
    with pytest.raises(errors.OwnershipLostError):
        store.take_commands("d-1", token=1)  # the stale owner consumes nothing
    assert [c.name for c in store.take_commands("d-1", token=2)] == ["abort"]


def test_take_commands_under_concurrent_appends(
    store: journal_base.JournalStore, opener: Callable[..., journal_base.JournalStore]
) -> None:
    """4 writers (own store each) append while the owner takes: every command once, each batch in seq order."""
    store.create_run(make_run())
    writers = [opener() for _ in range(4)]
    per_writer = 25
    done = threading.Event()

    def write(index: int) -> list[int]:
        return [writers[index].append(command("d-1", "note", w=index, n=n)) for n in range(per_writer)]

    delivered: list[records.Event] = []
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(write, i) for i in range(4)]

        def wait_for_writers() -> None:
            for future in futures:
                future.exception()
            done.set()

        pool_done = threading.Thread(target=wait_for_writers)
        pool_done.start()
        while True:  # bounded by the writers finishing; pytest-timeout bounds the whole test
            finished = done.is_set()
            batch = store.take_commands("d-1", token=1)
            assert [c.seq for c in batch] == sorted(c.seq for c in batch)
            delivered.extend(batch)
            if finished and not batch:
                break
        pool_done.join(timeout=60)
        appended = sorted(seq for f in futures for seq in f.result())
    assert sorted(c.seq for c in delivered) == appended
    assert len({(c.data["w"], c.data["n"]) for c in delivered}) == 4 * per_writer


# -- suspensions -----------------------------------------------------------------------------------


def test_record_intent_is_a_plain_insert(store: journal_base.JournalStore) -> None:
    store.create_run(make_run())
    store.record_intent(make_suspension(), action(name="suspend.intent"), token=1)
    events_before = len(store.events("d-1"))
    changed = records.SuspensionRecord(**{**make_suspension().__dict__, "prior": {"autorestart": False}})
    with pytest.raises(errors.JournalError, match="already recorded"):
        store.record_intent(changed, action(name="suspend.intent"))
    [kept] = store.suspensions("d-1")
    assert kept.prior == {"autorestart": True} and kept.prior_known
    assert len(store.events("d-1")) == events_before  # the refused transaction wrote no event either
    with pytest.raises(errors.RunNotFoundError):
        store.record_intent(make_suspension("nope"), action("nope"))


def test_suspensions_come_back_in_the_order_their_intents_were_recorded(store: journal_base.JournalStore) -> None:
    """Not in name order: a restore reverses this order (the last suspended is the first restored)."""
    store.create_run(make_run())
    store.create_run(make_run("d-2"))
    names = ["zeta", "alpha", "mid", "beta"]
    store.record_intent(make_suspension(policy=names[0]), action(name="suspend.intent"), token=1)
    store.record_intent(make_suspension("d-2", policy="only"), action("d-2", name="suspend.intent"), token=1)
    store.record_intents([(make_suspension(policy=n), action(name="suspend.intent")) for n in names[1:3]], token=1)
    store.record_intent(make_suspension(policy=names[3]), action(name="suspend.intent"), token=1)
    assert [s.policy for s in store.suspensions("d-1")] == names
    assert [s.policy for s in store.suspensions() if s.run_id == "d-1"] == names


def test_record_prior_is_written_once(store: journal_base.JournalStore) -> None:
    store.create_run(make_run())
    store.record_intent(make_suspension(prior_known=False), action(name="suspend.intent"))
    [unknown] = store.suspensions("d-1")
    assert not unknown.prior_known
    store.record_prior("d-1", "p", {"autorestart": True, "n": 1}, token=1)
    store.record_prior("d-1", "p", {"n": 1, "autorestart": True})  # the same value again: a no-op
    with pytest.raises(errors.JournalError, match="never replaced"):
        store.record_prior("d-1", "p", {"autorestart": False})
    [known] = store.suspensions("d-1")
    assert known.prior_known and known.prior == {"autorestart": True, "n": 1}
    with pytest.raises(errors.JournalError, match="no suspension of q"):
        store.record_prior("d-1", "q", {})


def test_update_suspension_compare_and_set_and_unrestored(store: journal_base.JournalStore) -> None:
    store.create_run(make_run())
    store.record_intent(make_suspension(policy="p"), action())
    store.record_intent(make_suspension(policy="q"), action())
    store.update_suspension("d-1", "p", SS.SUSPENDED, at=110.0, detail="off", event=action(), expect=[SS.INTENDED])
    with pytest.raises(errors.StateConflictError, match="is suspended"):
        store.update_suspension("d-1", "p", SS.SUSPENDED, at=111.0, detail="x", event=action(), expect=[SS.INTENDED])
    store.update_suspension("d-1", "q", SS.NOT_CLAIMED, at=112.0, detail="never claimed", event=action())
    assert [s.policy for s in store.suspensions(unrestored=True)] == ["p"]
    store.take_over("d-1", owner="b", expected_token=1, at=113.0)
    with pytest.raises(errors.OwnershipLostError):
        store.update_suspension("d-1", "p", SS.RESTORED, at=114.0, detail="", event=action(), token=1)
    store.update_suspension("d-1", "p", SS.RESTORED, at=115.0, detail="ok", event=action(), token=2)
    assert store.suspensions(unrestored=True) == []
    [p, q] = store.suspensions("d-1")
    assert (p.state, p.updated_at, p.detail, q.state) == (SS.RESTORED, 115.0, "ok", SS.NOT_CLAIMED)


# -- read-only, URLs -------------------------------------------------------------------------------


def test_a_read_only_journal_reads_and_refuses_every_write(
    store: journal_base.JournalStore, opener: Callable[..., journal_base.JournalStore], tmp_path: Path
) -> None:
    store.create_run(make_run())
    store.record_intent(make_suspension(), action())
    reader = opener(read_only=True)
    assert reader.read_only and reader.resolve_run("d-1").run_id == "d-1"
    assert [s.policy for s in reader.suspensions(unrestored=True)] == ["p"]
    assert len(reader.events("d-1")) == 2
    writes: list[Callable[[], object]] = [
        lambda: reader.create_run(make_run("d-2")),
        lambda: reader.set_state("d-1", S.DONE, actor="a", trigger="t", at=1.0),
        lambda: reader.finish("d-1", outcome=records.Outcome.ABORTED, report_dir=None, at=1.0),
        lambda: reader.heartbeat("d-1", token=1, at=1.0),
        lambda: reader.take_over("d-1", owner="x", expected_token=1, at=1.0),
        lambda: reader.lock_target("t", run_id="d-1", at=1.0),
        lambda: reader.unlock_target("t", run_id="d-1"),
        lambda: reader.append(action()),
        lambda: reader.take_commands("d-1", token=1),
        lambda: reader.record_intent(make_suspension(policy="z"), action()),
        lambda: reader.record_prior("d-1", "p", {}),
        lambda: reader.update_suspension("d-1", "p", SS.RESTORED, at=1.0, detail="", event=action()),
    ]
    for write in writes:
        with pytest.raises(errors.JournalReadOnlyError):
            write()
    assert store.get_run("d-1") == reader.get_run("d-1")
    assert len(store.events("d-1")) == 2


def test_the_url_never_shows_a_password(pg_url: str, tmp_path: Path) -> None:
    with_password = pg_url.replace("postgres@", "postgres:s3cret-pw@", 1)
    journal = journal_store.open_journal(with_password)  # trust auth: the password is not checked
    try:
        assert "s3cret-pw" not in journal.url and "127.0.0.1" in journal.url
    finally:
        journal.close()
    with pytest.raises(errors.JournalUnavailableError) as refused:
        journal_store.open_journal("postgresql://u:s3cret-pw@127.0.0.1:1/db?password=s3cret-pw")
    assert "s3cret-pw" not in str(refused.value) and "127.0.0.1:1/db" in str(refused.value)
    path = tmp_path / "j.db"
    assert journal_store.open_journal(path, read_only=False).url == str(path)


# -- processes -------------------------------------------------------------------------------------

_LOCKER = """
import sys
from orchestrator.journal import store
journal = store.open_journal(sys.argv[1])
print("ready", flush=True)
for key in sys.stdin:
    holder = journal.lock_target(key.strip(), run_id=sys.argv[2], at=1.0)
    print("held" if holder is None else "blocked:" + holder, flush=True)
journal.close()
"""


def test_two_processes_locking_one_postgresql_journal_exactly_one_proceeds(pg_url: str) -> None:
    setup = journal_store.open_journal(pg_url)
    active_run(setup, "p1")
    active_run(setup, "p2")
    lockers = [
        subprocess.Popen(
            [sys.executable, "-c", _LOCKER, pg_url, run_id],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        for run_id in ("p1", "p2")
    ]
    try:
        for locker in lockers:
            assert locker.stdout is not None and locker.stdout.readline().strip() == "ready"
        for round_ in range(10):
            for locker in lockers:
                assert locker.stdin is not None
                locker.stdin.write(f"target-{round_}\n")
                locker.stdin.flush()
            answers = [locker.stdout.readline().strip() for locker in lockers if locker.stdout is not None]
            assert sorted(answers)[1] == "held", answers
            assert sorted(answers)[0] in ("blocked:p1", "blocked:p2"), answers
    finally:
        for locker in lockers:
            assert locker.stdin is not None
            locker.stdin.close()
        for locker in lockers:
            assert locker.wait(timeout=60) == 0
            assert locker.stdout is not None
            locker.stdout.close()
        setup.close()
