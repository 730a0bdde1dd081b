"""One PostgreSQL journal shared by two drill homes (two terminals, two machines' worth of state).

Every process here has its own DRILL_HOME and the same DRILL_JOURNAL_URL, as a team sharing one
journal would: the target lock, abort, ack and note all travel through the database alone.
"""

from __future__ import annotations

import functools
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from orchestrator.policies import base as policy_base
from orchestrator.sandbox import control
from tests.conftest import REPO, DrillEnv, copy_drill, drill_cmd, read_report, wait_for
from tests.unit.journal.conftest import pg_server_url, pg_url  # noqa: F401  (the PostgreSQL fixtures)

pytestmark = pytest.mark.e2e

ROUNDS = 5
AUTO = "ack=0.2s,mitigate=0.4s,resolve=0.6s"


class Shared:
    """Two drill homes on one PostgreSQL journal, aimed at one sandbox."""

    def __init__(self, tmp_path: Path, url: str, sandbox_home: Path) -> None:
        self.url = url
        self.a = DrillEnv(home=tmp_path / "home-a", archive=tmp_path / "archive-a")
        self.b = DrillEnv(home=tmp_path / "home-b", archive=tmp_path / "archive-b")
        self.drill = copy_drill(
            tmp_path,
            "shared-journal",
            target={"kind": "sandbox", "home": str(sandbox_home.resolve())},
            detection={"interval": "100ms", "holdWindow": "300ms"},
            hints=[],
        )

    def env(self, home: DrillEnv, **extra: str) -> dict[str, str]:
        return home.env(DRILL_JOURNAL_URL=self.url, **extra)

    def start(self, home: DrillEnv, *extra: str, **env: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            drill_cmd("run", str(self.drill), "--plain", *extra),
            env=self.env(home, **env),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def cli(self, home: DrillEnv, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            drill_cmd(*args), env=self.env(home), cwd=REPO, capture_output=True, text=True, timeout=60, check=False
        )

    def rows(self, sql: str, *params: object) -> list[tuple[object, ...]]:
        """Rows from the shared journal ([] before the first run created its tables)."""
        with psycopg.connect(self.url.replace("postgresql+psycopg://", "postgresql://", 1), autocommit=True) as conn:
            try:
                return list(conn.execute(sql, params).fetchall())
            except psycopg.errors.UndefinedTable:
                return []

    def state(self, run_id: str) -> str | None:
        rows = self.rows("SELECT state FROM runs WHERE run_id = %s", run_id)
        return str(rows[0][0]) if rows else None

    def only_run(self, proc: subprocess.Popen[str], *, state: str) -> str:
        """The one run in the journal, once it is in ``state`` (its process still running)."""

        def there() -> str | None:
            assert proc.poll() is None, f"drill run exited early: {proc.communicate()}"
            rows = self.rows("SELECT run_id, state FROM runs")
            assert len(rows) <= 1, rows
            return str(rows[0][0]) if rows and rows[0][1] == state else None

        run_id = wait_for(there, timeout_s=30, what=f"the run to reach {state} in the shared journal")
        assert isinstance(run_id, str)
        return run_id


@pytest.fixture
def shared(tmp_path: Path, pg_url: str, drill_env: DrillEnv, sandbox: control.SandboxClient) -> Iterator[Shared]:  # noqa: F811
    yield Shared(tmp_path, pg_url, drill_env.sandbox_home)


def assert_restored(shared: Shared, sandbox: control.SandboxClient, run_id: str) -> None:
    status = sandbox.status()
    assert status.autorestart is True
    assert policy_base.MARKER_KEY not in status.annotations
    [(prior, state)] = shared.rows("SELECT prior, state FROM suspensions WHERE run_id = %s", run_id)
    assert state == "restored"
    assert json.loads(str(prior)) == {"autorestart": True, "instance": status.instance}
    assert shared.rows("SELECT run_id FROM target_locks") == []


def _one_refused_one_responding(
    homes: tuple[DrillEnv, DrillEnv], procs: list[subprocess.Popen[str]], round_: int
) -> tuple[int, Path] | None:
    """(index of the run paused at responding, its pause marker) once the other has exited; None before."""
    paused = [next(iter(h.hooks_dir.glob("*.responding.paused")), None) for h in homes]
    exited = [p.poll() is not None for p in procs]
    assert sum(p is not None for p in paused) <= 1, f"round {round_}: both runs reached responding"
    if all(exited):
        pytest.fail(f"round {round_}: both runs exited: {[p.communicate() for p in procs]}")
    if sum(exited) == 1 and sum(p is not None for p in paused) == 1:
        winner = next(i for i, p in enumerate(paused) if p is not None)
        assert not exited[winner], f"round {round_}: the run that reached responding exited"
        found = paused[winner]
        assert found is not None
        return winner, found
    return None


def test_two_homes_one_journal_only_one_run_takes_the_target(shared: Shared, sandbox: control.SandboxClient) -> None:
    """(a) Started together from two homes: the journal's target lock lets exactly one through."""
    timings: list[float] = []
    homes = (shared.a, shared.b)
    for round_ in range(ROUNDS):
        before = {str(r[0]) for r in shared.rows("SELECT run_id FROM runs")}
        started = time.monotonic()
        # Both would pause once responding; only the run holding the target ever gets there, so the other's
        # preflight always meets a live holder, however slowly either process starts.
        procs = [shared.start(home, "--auto-respond", AUTO, DRILL_TEST_PAUSE_AT="responding") for home in homes]

        settled_on = wait_for(
            functools.partial(_one_refused_one_responding, homes, procs, round_),
            timeout_s=60,
            what="one run refused and the other responding",
        )
        assert isinstance(settled_on, tuple)
        winner, marker = settled_on
        loser = 1 - winner
        winner_id = marker.name.removesuffix(".responding.paused")
        out, err = procs[loser].communicate(timeout=30)
        assert procs[loser].returncode == 2, out + err
        assert "preflight failed, nothing was changed" in err and "target not locked" in err, err
        assert f"run {winner_id} is " in err, f"the refusal must name the run holding the target:\n{err}"
        assert sandbox.status().autorestart is False  # the refusal left the winner's suspension alone

        (homes[winner].hooks_dir / f"{winner_id}.responding.resume").touch()
        out, err = procs[winner].communicate(timeout=60)
        assert procs[winner].returncode == 0, out + err
        assert_restored(shared, sandbox, winner_id)
        new = {str(r[0]) for r in shared.rows("SELECT run_id FROM runs")} - before
        [loser_id] = new - {winner_id}
        assert shared.rows("SELECT state, outcome FROM runs WHERE run_id = %s", loser_id) == [("failed", "failed")]
        assert shared.rows("SELECT state FROM suspensions WHERE run_id = %s", loser_id) == []
        timings.append(time.monotonic() - started)
        for home in homes:  # the next round's pause markers start from empty hooks folders
            for f in home.hooks_dir.glob("*"):
                f.unlink()
    runs = shared.rows("SELECT state, outcome FROM runs")
    assert sorted(runs) == sorted([("done", "unaided")] * ROUNDS + [("failed", "failed")] * ROUNDS), runs
    print(f"\n{ROUNDS} rounds on one PostgreSQL journal: per round {', '.join(f'{t:.2f}s' for t in timings)}")


def _abort_from_b(shared: Shared, run_id: str) -> float:
    aborted = shared.cli(shared.b, "abort", run_id, "--as", "bob", "-m", "real incident")
    assert aborted.returncode == 0, aborted.stdout + aborted.stderr
    assert "restoring its automation now" not in aborted.stdout, "the run is alive: home B must not restore it"
    return time.monotonic()


def _assert_aborted_by_bob(shared: Shared, sandbox: control.SandboxClient, run_id: str) -> None:
    assert_restored(shared, sandbox, run_id)
    assert shared.rows("SELECT state, outcome FROM runs WHERE run_id = %s", run_id) == [("done", "aborted")]
    report = read_report(shared.a.archive / run_id)
    assert report["outcome"] == "aborted"
    assert "bob" in str(report["abort_reason"]) and "real incident" in str(report["abort_reason"])
    sandbox.wait_healthy(timeout_s=10)  # the rollbacks brought the service back


def test_abort_from_another_home_reaches_a_responding_run(shared: Shared, sandbox: control.SandboxClient) -> None:
    """(b) `drill abort` from home B stops a run of home A through the shared journal alone."""
    proc = shared.start(shared.a)
    run_id = shared.only_run(proc, state="responding")
    assert sandbox.status().autorestart is False
    sent = _abort_from_b(shared, run_id)
    out, err = proc.communicate(timeout=30)
    took = time.monotonic() - sent
    assert proc.returncode == 4, out + err
    assert took < 5.0, f"the run took {took:.1f}s to end after the abort"
    assert "aborted by bob: real incident" in err and "automation restored" in err, err
    _assert_aborted_by_bob(shared, sandbox, run_id)
    print(f"\nabort from home B to exit 4 of the run in home A: {took:.2f}s")


@pytest.mark.parametrize("step", ["suspending", "injecting"])
def test_abort_from_another_home_while_paused_at(step: str, shared: Shared, sandbox: control.SandboxClient) -> None:
    """(c) The abort is in the journal while the run is held at a mutating step; let go, it restores and exits 4."""
    proc = shared.start(shared.a, DRILL_TEST_PAUSE_AT=step)

    def paused() -> Path | None:
        assert proc.poll() is None, f"drill run exited early: {proc.communicate()}"
        return next(iter(shared.a.hooks_dir.glob(f"*.{step}.paused")), None)

    marker = wait_for(paused, timeout_s=30, what=f"the run to pause at {step}")
    assert isinstance(marker, Path)
    run_id = marker.name.removesuffix(f".{step}.paused")
    assert shared.state(run_id) == step
    assert sandbox.status().autorestart is False  # held after the suspension, with automation off
    _abort_from_b(shared, run_id)
    (shared.a.hooks_dir / f"{run_id}.{step}.resume").touch()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 4, out + err
    assert "aborted by bob: real incident" in err and "automation restored" in err, err
    assert "Traceback" not in err
    _assert_aborted_by_bob(shared, sandbox, run_id)


def test_ack_and_note_from_another_home_reach_the_run(shared: Shared, sandbox: control.SandboxClient) -> None:
    """(d) `drill ack` and `drill note` from home B land in the run's timeline (the run consumed them)."""
    proc = shared.start(shared.a)
    run_id = shared.only_run(proc, state="responding")
    for args in (("ack", run_id, "--as", "alice"), ("note", run_id, "--as", "bob", "-m", "paged from home B")):
        sent = shared.cli(shared.b, *args)
        assert sent.returncode == 0, sent.stdout + sent.stderr

    def shown() -> str | None:
        status = shared.cli(shared.b, "status", run_id)
        assert status.returncode == 0, status.stderr
        return status.stdout if "acknowledged" in status.stdout and "paged from home B" in status.stdout else None

    text = wait_for(shown, timeout_s=20, what="ack and note from home B in `drill status`", interval_s=0.3)
    assert isinstance(text, str)
    # The acknowledgement is the run's own timeline entry, written by home A's process once it took the command.
    acked = shared.rows(
        "SELECT actor FROM events WHERE run_id = %s AND kind = 'timeline' AND name = 'acknowledged'", run_id
    )
    assert acked == [("alice",)], acked
    assert "acknowledged" in shared.cli(shared.a, "status", run_id).stdout

    _abort_from_b(shared, run_id)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 4, out + err
    _assert_aborted_by_bob(shared, sandbox, run_id)
    report = read_report(shared.a.archive / run_id)
    assert "acknowledged" in [e["event"] for e in report["timeline"]]  # type: ignore[attr-defined]
    assert "paged from home B" in {n["text"] for n in report["notes"]}  # type: ignore[attr-defined]
