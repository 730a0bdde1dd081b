"""The run engine: one drill execution as an explicit state machine over a write-ahead journal.

    planned -> preflight -> suspending -> injecting -> responding -> restoring -> reporting -> done
    any state after preflight -> aborting -> restoring;  preflight -> failed (nothing mutated)

Every exit from suspending/injecting/responding (resolved, aborted, Ctrl-C, SIGTERM, guardrail,
max duration, exception) goes through ``_restore``, in a ``finally``.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import socket
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from orchestrator import errors, hooks, records, redaction, settings
from orchestrator.adapters import chaostoolkit
from orchestrator.clock import Clock
from orchestrator.definitions import loading, models
from orchestrator.journal import base as journal_base
from orchestrator.policies import base as policy_base
from orchestrator.reporting import reports
from orchestrator.restore import restoring
from orchestrator.run import autorespond, preflight, responding, signals
from orchestrator.targets import base as target_base

S = records.RunState
TL = records.TimelineKind


class Observer(Protocol):
    """Receives what the run does, as it does it (the CLI's live view)."""

    def on_state(self, state: records.RunState, at: float) -> None: ...
    def on_event(self, event: records.Event) -> None: ...


@dataclass(frozen=True)
class RunResult:
    run_id: str
    outcome: records.Outcome
    report_dir: str | None
    restore_ok: bool
    abort_reason: str | None

    @property
    def exit_code(self) -> int:
        """0 completed; 3 timed out / not recovered / deviated; 4 aborted; 5 automation NOT restored."""
        if not self.restore_ok:
            return 5
        if self.outcome is records.Outcome.ABORTED:
            return 4
        if self.outcome in (
            records.Outcome.TIMED_OUT,
            records.Outcome.NOT_RECOVERED,
            records.Outcome.DEVIATED,
        ):
            return 3
        return 0


def new_run_id(name: str, now: float) -> str:
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%d-%H%M%S")
    return f"{name}-{stamp}-{secrets.token_hex(2)}"


class Engine:
    """Runs one drill. Construct, then call ``run()`` once from the main thread."""

    def __init__(
        self,
        loaded: loading.LoadedDrill,
        *,
        journal: journal_base.JournalStore,
        target: target_base.Target,
        paths: settings.Paths,
        clock: Clock,
        timing: settings.Timing | None = None,
        auto_respond: list[autorespond.Step] | None = None,
        observer: Observer | None = None,
    ) -> None:
        self.loaded = loaded
        self.spec = loaded.drill.spec
        self.journal: journal_base.JournalStore = journal
        if observer is not None:
            self.journal = _Observed(journal, observer)
        self.target = target
        self.paths = paths
        self.clock = clock
        self.timing = timing or settings.Timing()
        self.auto_respond = auto_respond
        self.observer = observer
        self.started_at = clock.now()
        self.run_id = new_run_id(loaded.drill.metadata.name, self.started_at)
        self.deadline_at = self.started_at + self.spec.guardrails.max_duration + self.timing.restore_grace_s
        self.stop = threading.Event()
        self.abort_reason: str | None = None
        self.timed_out = False
        self.injected = False
        self.rolled_back = False
        self.t0: float | None = None
        self.watch: responding.Watch | None = None
        self.chaos_held = False

    # -- journal helpers ---------------------------------------------------------------------------

    def transition(self, state: records.RunState, trigger: str) -> None:
        self.journal.set_state(self.run_id, state, actor="drill", trigger=trigger, at=self.clock.now())

    def record(self, event: records.Event) -> records.Event:
        seq = self.journal.append(event)
        return dataclasses.replace(event, seq=seq)

    def action(
        self, name: str, *, trigger: str, expected: str, actual: str, started: float, **data: object
    ) -> records.Event:
        now = self.clock.now()
        return self.record(
            records.action(
                self.run_id,
                now,
                name,
                actor="drill",
                trigger=trigger,
                expected=expected,
                actual=actual,
                duration_s=now - started,
                **data,
            )
        )

    def timeline(
        self, kind: records.TimelineKind, *, actor: str = "drill", at: float | None = None, **data: object
    ) -> None:
        self.record(records.timeline(self.run_id, self.clock.now() if at is None else at, kind, actor=actor, **data))

    def request_abort(self, reason: str) -> None:
        if self.abort_reason is None:
            self.abort_reason = reason
        self.stop.set()

    # -- the run -----------------------------------------------------------------------------------

    def run(self) -> RunResult:
        self.journal.create_run(
            records.RunRecord(
                run_id=self.run_id,
                drill_name=self.loaded.drill.metadata.name,
                drill_path=str(self.loaded.path.resolve()),
                mode=records.RunMode(self.spec.mode.value),
                target_key=self.target.key,
                state=S.PLANNED,
                created_at=self.started_at,
                updated_at=self.started_at,
                pid=os.getpid(),
                host=socket.gethostname(),
                deadline_at=self.deadline_at,
                definition=self.loaded.drill.model_dump(mode="json", by_alias=True),
                experiment=self.loaded.experiment,
            )
        )
        session = chaostoolkit.ExperimentSession(
            self.loaded.experiment,
            extra_vars=self.target.experiment_vars(),
            log_path=self.paths.home / "runs" / self.run_id / "chaostoolkit.log",
        )
        try:
            self._preflight(session)
            with signals.trapped(lambda name: self.request_abort(f"{name} received")):
                return self._mutating_phases(session)
        finally:
            session.close()

    def _preflight(self, session: chaostoolkit.ExperimentSession) -> None:
        self.transition(S.PREFLIGHT, "drill run")
        checks = preflight.run_checks(
            self.loaded,
            self.target,
            self.journal,
            run_id=self.run_id,
            now=self.clock.now(),
            steady_state=session,
        )
        for event in preflight.as_events(checks, run_id=self.run_id, at=self.clock.now()):
            self.record(event)
        failed = preflight.failures(checks)
        if failed:
            self.transition(S.FAILED, "preflight failed")
            self.journal.finish(self.run_id, outcome=records.Outcome.FAILED, report_dir=None, at=self.clock.now())
            raise errors.PreflightError(failed)

    def _mutating_phases(self, session: chaostoolkit.ExperimentSession) -> RunResult:
        try:
            self.transition(S.SUSPENDING, "preflight passed")
            self._suspend_all()
            if not self.stop.is_set():
                self.transition(S.INJECTING, "automation suspended")
                self._inject(session)
            if not self.stop.is_set():
                self.transition(S.RESPONDING, "fault active")
                responding.respond(self, session)
        except Exception as exc:  # any failure still restores; the reason goes in the journal and report
            self.request_abort(f"error: {redaction.redact(str(exc)) or type(exc).__name__}")
        finally:
            restore_ok = self._restore(session)
        outcome = self._outcome()
        self.transition(S.REPORTING, "restored" if restore_ok else "restore NOT verified")
        report_dir = reports.folder_for(self.paths.archive, self.run_id)
        self.journal.finish(self.run_id, outcome=outcome, report_dir=str(report_dir), at=self.clock.now())
        reports.write_run_report(self.journal, self.run_id, self.paths.archive, now=self.clock.now())
        self.transition(S.DONE, outcome.value)
        return RunResult(self.run_id, outcome, str(report_dir), restore_ok, self.abort_reason)

    def _suspend_all(self) -> None:
        for policy in self.spec.policies:
            if self.stop.is_set():
                return
            suspender = self.target.suspender(policy.kind, policy.name)
            started = self.clock.now()
            prior = suspender.snapshot()
            marker = policy_base.Marker(self.run_id, policy.name, policy.kind, prior, self.deadline_at)
            self.journal.record_intent(
                records.SuspensionRecord(
                    run_id=self.run_id,
                    policy=policy.name,
                    kind=policy.kind,
                    target_key=self.target.key,
                    prior=prior,
                    deadline_at=self.deadline_at,
                    state=records.SuspensionState.INTENDED,
                    updated_at=started,
                    detail="suspend intended",
                ),
                records.action(
                    self.run_id,
                    started,
                    "suspend.intent",
                    actor="drill",
                    trigger="suspending",
                    expected=suspender.describe(suspender.suspended_value()),
                    actual="intent recorded",
                    policy=policy.name,
                    prior=prior,
                    deadline_at=self.deadline_at,
                ),
            )
            suspender.suspend(marker)
            hooks.pause_point("suspending", run_id=self.run_id, hooks_dir=self.paths.hooks_dir)
            verified = suspender.verify_suspended()
            now = self.clock.now()
            self.journal.update_suspension(
                self.run_id,
                policy.name,
                records.SuspensionState.SUSPENDED,
                at=now,
                detail="verified" if verified else "not verified",
                event=records.action(
                    self.run_id,
                    now,
                    "suspend",
                    actor="drill",
                    trigger="suspending",
                    expected=suspender.describe(suspender.suspended_value()),
                    actual=("verified: " if verified else "NOT VERIFIED: ") + suspender.describe(suspender.snapshot()),
                    duration_s=now - started,
                    policy=policy.name,
                    verified=verified,
                ),
            )
            if not verified:
                self.request_abort(f"policy {policy.name} did not read back as suspended")

    def _inject(self, session: chaostoolkit.ExperimentSession) -> None:
        started = self.clock.now()
        self.injected = True  # from here on, rollbacks must run whatever happens
        result = session.run_method()
        self.action(
            "inject",
            trigger="injecting",
            expected="fault active (method succeeded)",
            actual=result.summary,
            started=started,
            ok=result.ok,
        )
        hooks.pause_point("injecting", run_id=self.run_id, hooks_dir=self.paths.hooks_dir)
        if not result.ok:
            self.request_abort(f"fault injection failed: {result.summary}")
            return
        self.t0 = self.clock.now()
        self.timeline(TL.FAULT_ACTIVE, method=result.summary)
        if self.spec.mode is models.Mode.NO_AUTOMATION:
            responders = [p.name for p in self.spec.participants if p.role is models.Role.RESPONDER]
            self.timeline(TL.NOTIFIED, channel="console", participants=responders)

    def _restore(self, session: chaostoolkit.ExperimentSession) -> bool:
        if self.abort_reason is not None:
            self.timeline(TL.ABORTED, reason=self.abort_reason)
            self.transition(S.ABORTING, self.abort_reason)
        self.transition(S.RESTORING, self.abort_reason or ("timed out" if self.timed_out else "run complete"))
        if self.injected and not self.rolled_back:
            started = self.clock.now()
            try:
                result = session.run_rollbacks()
                summary, ok = result.summary, result.ok
            except errors.DrillError as exc:
                summary, ok = str(exc), False
            self.action(
                "rollback",
                trigger="restoring",
                expected="fault rolled back",
                actual=summary,
                started=started,
                ok=ok,
            )
            if ok:
                self.rolled_back = True
                self.timeline(TL.ROLLED_BACK)
        report = restoring.restore_run(
            self.journal,
            self.run_id,
            clock=self.clock,
            actor="drill",
            trigger="restoring",
            hooks_dir=self.paths.hooks_dir,
            target_for=lambda key: self.target if key == self.target.key else _other_target(key),
        )
        if self.spec.policies:
            self.timeline(TL.RESTORED, restored=report.restored, failed=report.failed)
        return report.ok

    def _outcome(self) -> records.Outcome:
        if self.abort_reason is not None:
            return records.Outcome.ABORTED
        return responding.outcome(self)

    def elapsed(self) -> float:
        return self.clock.now() - self.started_at


def _other_target(key: str) -> target_base.Target:
    from orchestrator.targets import registry

    return registry.from_key(key)


class _Observed:
    """The journal, telling the observer about every event as it becomes durable."""

    def __init__(self, inner: journal_base.JournalStore, observer: Observer) -> None:
        self._inner = inner
        self._observer = observer

    def __getattr__(self, name: str) -> Any:  # everything else passes through unchanged
        return getattr(self._inner, name)

    def create_run(self, run: records.RunRecord) -> None:
        self._inner.create_run(run)
        self._observer.on_state(run.state, run.created_at)

    def set_state(self, run_id: str, state: records.RunState, *, actor: str, trigger: str, at: float = 0.0) -> None:
        self._inner.set_state(run_id, state, actor=actor, trigger=trigger, at=at)
        self._observer.on_state(state, at)

    def append(self, event: records.Event) -> int:
        seq = self._inner.append(event)
        self._observer.on_event(dataclasses.replace(event, seq=seq))
        return seq

    def record_intent(self, suspension: records.SuspensionRecord, event: records.Event) -> None:
        self._inner.record_intent(suspension, event)
        self._observer.on_event(event)

    def update_suspension(
        self,
        run_id: str,
        policy: str,
        state: records.SuspensionState,
        *,
        at: float,
        detail: str,
        event: records.Event,
    ) -> None:
        self._inner.update_suspension(run_id, policy, state, at=at, detail=detail, event=event)
        self._observer.on_event(event)
