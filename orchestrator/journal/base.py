"""What every journal store provides: SQLite (embedded default) or PostgreSQL (a team's shared store).

Write-ahead rule: every write method is committed (durable) before it returns, so
``record_intent`` is on disk before the caller mutates anything, and ``update_suspension``
records the completion after.

Ownership: a run is written by one process at a time, its *owner*. ``runs.token`` is the fencing
token: a write that passes ``token`` is refused with ``OwnershipLostError`` once another process
has taken the run over (``take_over`` bumps the token), so a stale process writes nothing more.
``expect`` arguments make a write a compare-and-set on the current state (``StateConflictError``).

Batches: ``record_intents``, ``record_priors`` and ``update_suspensions`` mean exactly calling
``record_intent``, ``record_prior`` and ``update_suspension`` for each item in order (same
validation, fencing, redaction, events and errors), in ONE transaction: one commit for the whole
batch, and an item refused rolls the whole batch back, so nothing of it is written. An empty batch
writes nothing (and checks nothing).

A store opened ``read_only`` never writes, never migrates, and raises ``JournalReadOnlyError``
from every write method.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from orchestrator import records


@dataclass(frozen=True)
class SuspensionUpdate:
    """One item of ``update_suspensions``: the arguments of one ``update_suspension`` but the run and token."""

    policy: str
    state: records.SuspensionState
    at: float
    detail: str
    event: records.Event
    expect: Collection[records.SuspensionState] = ()


class JournalStore(Protocol):
    url: str  # for messages: credentials stripped (never print a password)
    read_only: bool

    def create_run(self, run: records.RunRecord) -> None: ...
    def get_run(self, run_id: str) -> records.RunRecord: ...
    def resolve_run(self, ref: str | None) -> records.RunRecord: ...
    def list_runs(self, *, limit: int = 50, active_only: bool = False) -> list[records.RunRecord]: ...
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
    ) -> None: ...
    def finish(
        self, run_id: str, *, outcome: records.Outcome, report_dir: str | None, at: float, token: int | None = None
    ) -> None: ...
    def heartbeat(self, run_id: str, *, token: int, at: float) -> None: ...
    def take_over(self, run_id: str, *, owner: str, expected_token: int, at: float) -> int: ...
    def lock_target(self, target_key: str, *, run_id: str, at: float) -> str | None: ...
    def unlock_target(self, target_key: str, *, run_id: str) -> None: ...
    def append(self, event: records.Event, *, token: int | None = None) -> int: ...
    # ``append`` of each, in order, as one write (one commit): all of them durable, or none.
    def append_all(self, events: Sequence[records.Event], *, token: int | None = None) -> list[int]: ...
    def events(
        self, run_id: str, *, after_seq: int = 0, kinds: Sequence[records.EventKind] = ()
    ) -> list[records.Event]: ...
    def take_commands(self, run_id: str, *, token: int) -> list[records.Event]: ...
    def record_intent(
        self, suspension: records.SuspensionRecord, event: records.Event, *, token: int | None = None
    ) -> None: ...
    def record_prior(self, run_id: str, policy: str, prior: dict[str, Any], *, token: int | None = None) -> None: ...
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
    ) -> None: ...
    def record_intents(
        self, items: Sequence[tuple[records.SuspensionRecord, records.Event]], *, token: int | None = None
    ) -> None: ...
    def record_priors(
        self, run_id: str, priors: Sequence[tuple[str, dict[str, Any]]], *, token: int | None = None
    ) -> None: ...
    def update_suspensions(
        self, run_id: str, updates: Sequence[SuspensionUpdate], *, token: int | None = None
    ) -> None: ...
    def suspensions(self, run_id: str | None = None, *, unrestored: bool = False) -> list[records.SuspensionRecord]: ...
    def export_jsonl(self, run_id: str, path: Path) -> None: ...
    def close(self) -> None: ...
