"""Liveness comes from the ownership record, so it holds across hosts sharing a journal.

A run owned by a process on another machine is alive while its heartbeat is fresh (never judged
dead because its PID is unknown here); on this machine, an owner whose PID and start time are
confirmed gone is dead at once, whatever its last heartbeat said.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys

from orchestrator import processes, records
from orchestrator.restore import recovery
from tests.unit.journal.builders import make_run

NOW = 1_900_000_000.0
LEASE = 15.0


def _run(owner: str, heartbeat_age_s: float, *, deadline_in_s: float = 600.0) -> records.RunRecord:
    return dataclasses.replace(
        make_run(state=records.RunState.RESPONDING),
        owner=owner,
        heartbeat_at=NOW - heartbeat_age_s,
        deadline_at=NOW + deadline_in_s,
    )


def test_a_run_on_another_host_is_alive_while_it_heartbeats() -> None:
    fresh = recovery.liveness(_run("laptop-of-bob:4242:99", 3.0), now=NOW, lease_s=LEASE)
    assert fresh.alive and not fresh.expired
    stale = recovery.liveness(_run("laptop-of-bob:4242:99", 60.0), now=NOW, lease_s=LEASE)
    assert not stale.alive and "60s ago" in stale.detail


def test_a_dead_owner_on_this_host_is_dead_at_once() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=30)
    host = processes.owner_id().split(":")[0]
    gone = recovery.liveness(_run(f"{host}:{child.pid}:1", 0.5), now=NOW, lease_s=LEASE)
    assert not gone.alive and "is gone" in gone.detail
    me = recovery.liveness(_run(processes.owner_id(), 0.5), now=NOW, lease_s=LEASE)
    assert me.alive


def test_past_the_deadline_is_expired_even_when_alive() -> None:
    hung = recovery.liveness(_run("laptop-of-bob:4242:99", 1.0, deadline_in_s=-1.0), now=NOW, lease_s=LEASE)
    assert hung.alive and hung.expired
