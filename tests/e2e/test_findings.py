"""One end-to-end test per review finding, each asserting what the old code got wrong.

Every test drives the real CLI in subprocesses against a real sandbox in an isolated drill home.
Runs are held at a step with ``DRILL_TEST_PAUSE_AT`` and killed, or left hung, as the finding needs.
The second half (journal loss, --expired on a hung run, responder input) is in
``test_findings_more.py``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from subprocess import CompletedProcess

import pytest
import yaml

from orchestrator.policies import base as policy_base
from orchestrator.sandbox import control
from tests.conftest import NO_AUTOMATION, REPO, DrillEnv, copy_drill, drill_cmd, journal_rows, wait_for

pytestmark = pytest.mark.e2e

FAST = "ack=0.2s,mitigate=0.4s,resolve=0.6s"
POLICY = "supervisor-auto-restart"

RunDrill = Callable[..., CompletedProcess[str]]


# --------------------------------------------------------------------------------------------- helpers


class Held:
    """`drill run` processes held at a pause point; every one still alive is SIGKILLed at teardown."""

    def __init__(self, drill_env: DrillEnv) -> None:
        self.drill_env = drill_env
        self.procs: list[subprocess.Popen[str]] = []

    def start(
        self, step: str = "responding", auto: str = "ack=1s", drill: Path = NO_AUTOMATION
    ) -> tuple[subprocess.Popen[str], str]:
        """Start `drill run` that stops at ``step``; the process and the run id once it has paused."""
        hooks = self.drill_env.hooks_dir
        already = set(hooks.glob(f"*.{step}.paused")) if hooks.exists() else set()
        proc = subprocess.Popen(
            drill_cmd("run", str(drill), "--plain", "--auto-respond", auto),
            env=self.drill_env.env(DRILL_TEST_PAUSE_AT=step),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.procs.append(proc)

        def paused() -> Path | None:
            if proc.poll() is not None:
                out, err = proc.communicate()
                pytest.fail(f"drill run exited early ({proc.returncode}):\n{out}\n{err}")
            found = set(hooks.glob(f"*.{step}.paused")) - already if hooks.exists() else set()
            return next(iter(found), None)

        marker = wait_for(paused, timeout_s=30, what=f"drill run to pause at {step}")
        assert isinstance(marker, Path)
        return proc, marker.name.removesuffix(f".{step}.paused")

    def killed(self, step: str = "responding", auto: str = "ack=1s") -> str:
        """A run SIGKILLed while held at ``step``: its run id."""
        proc, run_id = self.start(step, auto)
        kill(proc)
        return run_id

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                kill(proc)
            for stream in (proc.stdout, proc.stderr):
                if stream:
                    stream.close()


def kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)


@pytest.fixture
def held(drill_env: DrillEnv, sandbox: control.SandboxClient) -> Iterator[Held]:
    h = Held(drill_env)
    try:
        yield h
    finally:
        h.close()


def finished_run(run_drill: RunDrill) -> str:
    """A run that went all the way through (unaided, automation restored): its id."""
    done = run_drill("run", str(NO_AUTOMATION), "--plain", "--auto-respond", FAST)
    assert done.returncode == 0, done.stdout + done.stderr
    [row] = [line for line in done.stdout.splitlines() if line.startswith("report: ")]
    return Path(row.removeprefix("report: ")).parent.name


def event_count(drill_env: DrillEnv, run_id: str) -> int:
    [(count,)] = journal_rows(drill_env.home, "SELECT count(*) FROM events WHERE run_id = ?", run_id)
    assert isinstance(count, int)
    return count


def run_state(drill_env: DrillEnv, run_id: str) -> tuple[object, ...]:
    [row] = journal_rows(drill_env.home, "SELECT state, outcome FROM runs WHERE run_id = ?", run_id)
    return row


def write_journal(drill_env: DrillEnv, sql: str, *params: object) -> None:
    with contextlib.closing(sqlite3.connect(drill_env.home / "journal.db", timeout=10)) as db, db:
        db.execute(sql, params)


def assert_automation_back(sandbox: control.SandboxClient) -> None:
    status = sandbox.status()
    assert status.autorestart is True, "auto-restart is still off"
    assert policy_base.MARKER_KEY not in status.annotations, status.annotations


def assert_suspended_by(sandbox: control.SandboxClient, run_id: str) -> None:
    status = sandbox.status()
    assert status.autorestart is False
    marker = policy_base.Marker.from_json(status.annotations[policy_base.MARKER_KEY])
    assert marker is not None and marker.run_id == run_id


def clean_stderr(text: str) -> None:
    assert "Traceback" not in text, text
    assert "BrokenPipeError" not in text, text


def proc_start_time(pid: int) -> int:
    """Field 22 of /proc/PID/stat (start time in clock ticks since boot), read independently of the product."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return int(fields[19])


def proc_state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]


@pytest.fixture
def bystander() -> Iterator[subprocess.Popen[bytes]]:
    """A live process that has nothing to do with drill (its PID stands in for a reused one)."""
    proc = subprocess.Popen(["sleep", "300"])
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


# -------------------------------------------------------------------- 1. `| head -1` is not an error


@pytest.mark.parametrize("command", ["status latest", "sandbox status"])
def test_output_into_a_closed_pipe_is_quiet(
    command: str, drill_env: DrillEnv, sandbox: control.SandboxClient, run_drill: RunDrill
) -> None:
    finished_run(run_drill)
    cli = " ".join([sys.executable, "-m", "orchestrator.cli.main", command])
    # A real shell pipe, as a user types it; pipefail so drill's own status counts, not only head's.
    piped = subprocess.run(
        ["bash", "-o", "pipefail", "-c", f"{cli} | head -1"],
        capture_output=True,
        text=True,
        timeout=60,
        env=drill_env.env(),
        cwd=REPO,
        check=False,
    )
    assert piped.returncode in (0, 141), piped.stderr  # 141: killed by SIGPIPE, what the shell reports
    assert len(piped.stdout.splitlines()) == 1
    clean_stderr(piped.stderr)
    # The deterministic case: the reader is gone before drill writes its first line.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        closed = subprocess.run(
            drill_cmd(*command.split()),
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            env=drill_env.env(),
            cwd=REPO,
            check=False,
        )
    finally:
        os.close(write_end)
    assert closed.returncode in (0, 141, -signal.SIGPIPE), closed.stderr
    clean_stderr(closed.stderr)


# ----------------------------------------------------- 2. an archive that cannot be written ends done


def test_unwritable_archive_still_restores_and_ends_done(
    tmp_path: Path, drill_env: DrillEnv, sandbox: control.SandboxClient, run_drill: RunDrill
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a regular file where a folder would have to be\n", encoding="utf-8")
    archive = blocker / "archive"  # mkdir fails with ENOTDIR, even for root
    result = run_drill("run", str(NO_AUTOMATION), "--plain", "--auto-respond", FAST, DRILL_ARCHIVE=str(archive))
    clean_stderr(result.stderr)
    assert_automation_back(sandbox)
    # Restored, but not everything was recorded: the report is missing. 6 is "restored but not all recorded".
    assert result.returncode == 6, result.stdout + result.stderr
    assert str(archive) in result.stderr, result.stderr
    assert "automation restored" in result.stderr, result.stderr
    [(run_id, state, outcome)] = journal_rows(drill_env.home, "SELECT run_id, state, outcome FROM runs")
    assert (state, outcome) == ("done", "unaided"), "the run must not stay in `reporting`"
    # The failed report is itself on the record, and the next run is not blocked by a leftover lock.
    failed_reports = journal_rows(
        drill_env.home, "SELECT actual FROM events WHERE run_id = ? AND name = 'report'", run_id
    )
    assert failed_reports and "FAILED" in str(failed_reports[0][0])
    assert journal_rows(drill_env.home, "SELECT * FROM target_locks") == []


# ---------------------------------------------- 3. two concurrent restores: one wins, one is refused


@pytest.mark.parametrize("attempt", range(5))
def test_two_concurrent_restores_restore_once(
    attempt: int, drill_env: DrillEnv, sandbox: control.SandboxClient, held: Held, run_drill: RunDrill
) -> None:
    run_id = held.killed("responding")
    assert_suspended_by(sandbox, run_id)
    procs = [
        subprocess.Popen(
            drill_cmd("restore", run_id),
            env=drill_env.env(),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    results = [(p.returncode, out, err) for p, (out, err) in zip(procs, outputs, strict=True)]
    for _code, _out, err in results:
        clean_stderr(err)
    winners = [r for r in results if r[0] == 0 and f"restored and verified: {POLICY}" in r[1]]
    assert len(winners) == 1, results
    [(loser_code, loser_out, loser_err)] = [r for r in results if r is not winners[0]]
    if loser_code == 1:
        # Lost the compare-and-set, or came late and found the winner's fresh ownership record.
        assert "another process took run" in loser_err or "being restored by another `drill restore`" in loser_err, (
            loser_err
        )
        assert "--force" not in loser_err  # never pointed at taking over a restore in progress
    else:
        assert loser_code == 0 and "nothing to restore" in loser_out, (loser_code, loser_out, loser_err)
        assert "restored and verified" not in loser_out
    assert_automation_back(sandbox)
    restores = journal_rows(
        drill_env.home,
        "SELECT count(*) FROM events WHERE run_id = ? AND kind = 'action' AND name = 'restore' "
        "AND json_extract(data, '$.policy') = ?",
        run_id,
        POLICY,
    )
    assert restores == [(1,)]
    assert run_state(drill_env, run_id) == ("done", "aborted")
    assert journal_rows(drill_env.home, "SELECT state FROM suspensions WHERE run_id = ?", run_id) == [("restored",)]
    shown = run_drill("journal", run_id)
    assert shown.returncode == 0, shown.stderr
    archived = (drill_env.archive / run_id / "journal.jsonl").read_text(encoding="utf-8")
    # No event of the losing restore slipped into the winner's archive, and none is missing from it.
    assert archived.splitlines() == shown.stdout.splitlines(), "archived journal.jsonl differs from `drill journal`"


# ------------------------------------------------------------- 4. restore of a finished run: a no-op


def test_restore_of_a_finished_run_changes_nothing(
    drill_env: DrillEnv, sandbox: control.SandboxClient, run_drill: RunDrill
) -> None:
    run_id = finished_run(run_drill)
    before = event_count(drill_env, run_id)
    again = run_drill("restore", run_id)
    assert again.returncode == 0, again.stderr
    assert "nothing to restore" in again.stdout
    clean_stderr(again.stderr)
    assert event_count(drill_env, run_id) == before
    assert run_state(drill_env, run_id) == ("done", "unaided")
    assert_automation_back(sandbox)


# ------------------------------------------------------ 5. abort of a dead run restores immediately


def test_abort_of_a_dead_run_restores_now(
    drill_env: DrillEnv, sandbox: control.SandboxClient, held: Held, run_drill: RunDrill
) -> None:
    run_id = held.killed("responding")
    assert_suspended_by(sandbox, run_id)
    aborted = run_drill("abort", run_id, "--as", "bob", timeout=60)
    clean_stderr(aborted.stderr)
    assert aborted.returncode == 0, aborted.stdout + aborted.stderr
    assert f"restored and verified: {POLICY}" in aborted.stdout
    assert_automation_back(sandbox)
    assert run_state(drill_env, run_id) == ("done", "aborted")


# ------------------------------------------------------------------------------------ 6. PID reuse


def _fake_owner(drill_env: DrillEnv, run_id: str, pid: int, started: int) -> None:
    write_journal(
        drill_env,
        "UPDATE runs SET owner = ?, heartbeat_at = ? WHERE run_id = ?",
        f"{socket.gethostname()}:{pid}:{started}",
        time.time(),
        run_id,
    )


def test_restore_is_not_fooled_by_a_reused_pid(
    drill_env: DrillEnv,
    sandbox: control.SandboxClient,
    held: Held,
    run_drill: RunDrill,
    bystander: subprocess.Popen[bytes],
) -> None:
    run_id = held.killed("responding")
    _fake_owner(drill_env, run_id, bystander.pid, proc_start_time(bystander.pid) + 12345)
    restored = run_drill("restore", run_id)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert f"restored and verified: {POLICY}" in restored.stdout
    assert_automation_back(sandbox)
    assert run_state(drill_env, run_id) == ("done", "aborted")
    assert bystander.poll() is None


def test_abort_never_signals_a_reused_pid(
    drill_env: DrillEnv,
    sandbox: control.SandboxClient,
    held: Held,
    run_drill: RunDrill,
    bystander: subprocess.Popen[bytes],
) -> None:
    run_id = held.killed("responding")
    _fake_owner(drill_env, run_id, bystander.pid, proc_start_time(bystander.pid) + 12345)
    aborted = run_drill("abort", run_id, "--as", "bob", timeout=60)
    clean_stderr(aborted.stderr)
    assert aborted.returncode == 0, aborted.stdout + aborted.stderr
    assert_automation_back(sandbox)
    assert run_state(drill_env, run_id) == ("done", "aborted")
    assert bystander.poll() is None, "drill abort signalled a process that is not the run"
    assert proc_state(bystander.pid) in ("S", "R"), "the unrelated process was stopped"


def test_restore_refuses_an_owner_that_really_is_alive(
    drill_env: DrillEnv,
    sandbox: control.SandboxClient,
    held: Held,
    run_drill: RunDrill,
    bystander: subprocess.Popen[bytes],
) -> None:
    run_id = held.killed("responding")
    _fake_owner(drill_env, run_id, bystander.pid, proc_start_time(bystander.pid))
    events = event_count(drill_env, run_id)
    refused = run_drill("restore", run_id)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "still running" in refused.stderr
    assert_suspended_by(sandbox, run_id)
    assert event_count(drill_env, run_id) == events
    # Once that process is really gone, the same command restores (the heartbeat is still fresh).
    bystander.kill()
    bystander.wait(timeout=10)
    restored = run_drill("restore", run_id)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert_automation_back(sandbox)


# ----------------------------------------------- 7. a run refused by the lock is told about the live run


def test_second_run_is_told_about_the_live_run(
    drill_env: DrillEnv, sandbox: control.SandboxClient, held: Held, run_drill: RunDrill
) -> None:
    first, run_id = held.start("responding")
    second = run_drill("run", str(NO_AUTOMATION), "--plain", "--auto-respond", "ack=1s", timeout=60)
    clean_stderr(second.stderr)
    assert second.returncode == 2, second.stdout + second.stderr
    assert run_id in second.stderr, second.stderr
    assert "responding" in second.stderr, second.stderr
    lowered = second.stderr.lower()
    assert "marker" not in lowered, second.stderr
    assert "steady state" not in lowered and "steady-state" not in lowered, second.stderr
    # The first run is untouched: still alive, still holding the automation it suspended.
    assert first.poll() is None
    assert_suspended_by(sandbox, run_id)


# ------------------------------------------------- 8. an experiment whose configuration cannot load


def test_experiment_configuration_error_fails_cleanly(
    tmp_path: Path,
    drill_env: DrillEnv,
    sandbox: control.SandboxClient,
    run_drill: RunDrill,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DRILL_TEST_SURELY_UNSET_VAR", raising=False)
    base = copy_drill(tmp_path, "base")
    experiment_path = Path(yaml.safe_load(base.read_text(encoding="utf-8"))["spec"]["experiment"]["path"])
    experiment = json.loads(experiment_path.read_text(encoding="utf-8"))
    experiment["configuration"]["must_be_set"] = {"type": "env", "key": "DRILL_TEST_SURELY_UNSET_VAR"}
    broken = tmp_path / "broken-experiment.json"
    broken.write_text(json.dumps(experiment), encoding="utf-8")
    drill = copy_drill(tmp_path, "broken-config", experiment={"path": str(broken)})

    result = run_drill("run", str(drill), "--plain", "--auto-respond", FAST, timeout=60)
    clean_stderr(result.stderr)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "DRILL_TEST_SURELY_UNSET_VAR" in result.stderr, result.stderr
    assert_automation_back(sandbox)
    assert sandbox.healthy()
    # The experiment is loaded (and its configuration resolved) before anything is touched. Either the
    # run is refused before it is created, or it is recorded and ends `failed`: never left active.
    runs = journal_rows(drill_env.home, "SELECT state FROM runs")
    assert all(state == "failed" for (state,) in runs), runs
    assert journal_rows(drill_env.home, "SELECT * FROM target_locks") == []
