"""Benchmark the journal's suspension writes: one transaction per object, or one per batch.

    .venv/bin/python scripts/bench_journal_batches.py              # 2,000 suspensions, SQLite (+ PG if set)
    DRILL_TEST_PG_URL=$(bash tests/pg.sh url DIR) .venv/bin/python scripts/bench_journal_batches.py
    .venv/bin/python scripts/bench_journal_batches.py --suspensions 500 --batch 50 --batch 500

For each back end (a SQLite file in a temporary folder, WAL + synchronous=FULL; PostgreSQL in a
throwaway database on the server of ``--pg-url``, default ``$DRILL_TEST_PG_URL``), each way of
writing gets a fresh journal and writes, for every suspension, the intent (prior not yet known),
the prior and the update to ``suspended``, fenced by the run's token: one call per object
(``singles``) or ``record_intents`` / ``record_priors`` / ``update_suspensions`` in batches.
Prints the seconds of each step and the speed-up of the whole over the singles.
Note that ``tests/pg.sh`` runs PostgreSQL with ``fsync=off``: its commits cost less than a real server's.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg

from orchestrator import records
from orchestrator.journal import base as journal_base
from orchestrator.journal import store as journal_store

SS = records.SuspensionState
RUN = "bench-1"
STEPS = ("intents", "priors", "updates")


def _run() -> records.RunRecord:
    return records.RunRecord(
        run_id=RUN,
        drill_name="bench",
        drill_path="/bench.yaml",
        mode=records.RunMode.NO_AUTOMATION,
        target_key="kubernetes:bench",
        state=records.RunState.RESPONDING,
        created_at=100.0,
        updated_at=100.0,
        pid=1,
        host="bench",
        deadline_at=4000.0,
        definition={},
        experiment={},
        owner="bench:1",
    )


def _event(name: str, policy: str, at: float) -> records.Event:
    return records.action(RUN, at, name, actor="drill", trigger="bench", expected="suspended", policy=policy)


def _intent(policy: str) -> tuple[records.SuspensionRecord, records.Event]:
    suspension = records.SuspensionRecord(
        run_id=RUN,
        policy=policy,
        kind="kubernetes-hpa",
        target_key="kubernetes:bench",
        prior={},
        deadline_at=4000.0,
        state=SS.INTENDED,
        updated_at=101.0,
        prior_known=False,
    )
    return suspension, _event("suspend.intent", policy, 101.0)


def _prior(policy: str) -> dict[str, Any]:
    return {"minReplicas": 2, "maxReplicas": 10, "name": policy}


def _update(policy: str) -> journal_base.SuspensionUpdate:
    return journal_base.SuspensionUpdate(
        policy, SS.SUSPENDED, at=102.0, detail="scaled down", event=_event("suspend.done", policy, 102.0)
    )


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _write_singles(journal: journal_base.JournalStore, step: str, policies: Sequence[str]) -> None:
    for p in policies:
        if step == "intents":
            journal.record_intent(*_intent(p), token=1)
        elif step == "priors":
            journal.record_prior(RUN, p, _prior(p), token=1)
        else:
            u = _update(p)
            journal.update_suspension(RUN, p, u.state, at=u.at, detail=u.detail, event=u.event, token=1)


def _write_batches(journal: journal_base.JournalStore, step: str, policies: Sequence[str], size: int) -> None:
    for chunk in _chunks(policies, size):
        if step == "intents":
            journal.record_intents([_intent(p) for p in chunk], token=1)
        elif step == "priors":
            journal.record_priors(RUN, [(p, _prior(p)) for p in chunk], token=1)
        else:
            journal.update_suspensions(RUN, [_update(p) for p in chunk], token=1)


def measure(url: str, policies: Sequence[str], batch: int | None) -> list[float]:
    """Seconds of each step on a fresh journal at ``url``; checks what it wrote."""
    journal = journal_store.open_journal(url)
    try:
        journal.create_run(_run())
        seconds = []
        for step in STEPS:
            began = time.perf_counter()
            if batch is None:
                _write_singles(journal, step, policies)
            else:
                _write_batches(journal, step, policies, batch)
            seconds.append(time.perf_counter() - began)
        written = journal.suspensions(RUN)
        assert len(written) == len(policies) and all(s.state is SS.SUSPENDED and s.prior_known for s in written)
        assert len(journal.events(RUN)) == 1 + 2 * len(policies)
        return seconds
    finally:
        journal.close()


@contextlib.contextmanager
def sqlite_journals() -> Iterator[Callable[[], str]]:
    with tempfile.TemporaryDirectory(prefix="drill-bench-journal-") as folder:
        count = iter(range(1_000_000))
        yield lambda: str(Path(folder) / f"journal-{next(count)}.db")


@contextlib.contextmanager
def postgresql_journals(server: str) -> Iterator[Callable[[], str]]:
    """Throwaway databases on the server of ``server`` (its ``postgres`` database's URL), dropped after."""
    admin_url = server.replace("postgresql+psycopg://", "postgresql://", 1)
    head, _, _ = server.rpartition("/")
    made: list[str] = []

    def fresh() -> str:
        name = f"drill_bench_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        made.append(name)
        return f"{head}/{name}"

    try:
        yield fresh
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            for name in made:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def bench(backend: str, journals: Callable[[], str], policies: Sequence[str], batches: Sequence[int]) -> None:
    singles: float | None = None
    for batch in [None, *batches]:
        seconds = measure(journals(), policies, batch)
        total = sum(seconds)
        singles = singles or total
        mode = "singles" if batch is None else f"batch {batch:,}"
        steps = "  ".join(f"{s:8.3f}" for s in seconds)
        print(f"{backend:<10}  {mode:<12}  {steps}  {total:8.3f}  {singles / total:8.1f}x", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suspensions", type=int, default=2_000)
    parser.add_argument("--batch", type=int, action="append", help="batch size (repeatable; default 100 and 2,000)")
    parser.add_argument("--pg-url", default=os.environ.get("DRILL_TEST_PG_URL", ""), help="a PostgreSQL server")
    args = parser.parse_args()
    policies = [f"deployment/ns-{i % 50}/app-{i:05}" for i in range(args.suspensions)]
    batches = args.batch or [100, 2_000]

    print(f"{args.suspensions:,} suspensions: intent + prior + update each; seconds, and speed-up over singles")
    print(f"{'back end':<10}  {'writes':<12}  " + "  ".join(f"{s:>8}" for s in STEPS) + f"  {'total':>8}  {'ratio':>9}")
    with sqlite_journals() as journals:
        bench("sqlite", journals, policies, batches)
    if args.pg_url:
        with postgresql_journals(args.pg_url) as journals:
            bench("postgresql", journals, policies, batches)
    else:
        print("postgresql  (skipped: set DRILL_TEST_PG_URL or pass --pg-url)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
