"""The run engine: one drill execution as an explicit state machine over a write-ahead journal.

    planned -> preflight -> suspending -> injecting -> responding -> restoring -> reporting -> done
    any state after preflight -> aborting -> restoring;  preflight -> failed (nothing mutated)

Restore first, always. Every exit from suspending/injecting/responding (resolved, aborted, a
signal, a guardrail, max duration, any exception, the journal failing) goes through
``_restore_first`` in a ``finally``: the policies this process claimed are restored from its own
memory, before the rollbacks, the report, the observers or anything else that can fail. Journal
writes on that path are attempted and their failures collected, never raised; the exit status
tells "restored but not journaled" (6) apart from "not restored" (5).

The run owns its work: its ownership record in the journal carries a heartbeat and a fencing
token, every write of the run is fenced by that token, and its target is locked in the journal.
If another process takes the run over (``drill restore`` of a hung run past its deadline), the
next write fails with ``OwnershipLostError`` and this process writes nothing more (exit 7).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from orchestrator import errors, hooks, processes, records, redaction, settings
from orchestrator.adapters import chaostoolkit, ctkrun
from orchestrator.clock import Clock
from orchestrator.definitions import loading, models
from orchestrator.journal import base as journal_base
from orchestrator.policies import base as policy_base
from orchestrator.restore import recovery, restoring
from orchestrator.run import (
    autorespond,
    experimenting,
    finishing,
    interrupting,
    preflight,
    relaying,
    responding,
    signals,
    suspending,
)
from orchestrator.run.results import ExitCode, RunResult
from orchestrator.targets import base as target_base

S = records.RunState
TL = records.TimelineKind
SS = records.SuspensionState


class Observer(Protocol):
    """Receives what the run does, after it is durable (the CLI's live view; Slack later)."""

    def on_state(self, state: records.RunState, at: float) -> None: ...
    def on_event(self, event: records.Event) -> None: ...


class Session(Protocol):
    """What the engine needs of an experiment session (``chaostoolkit.ExperimentSession``)."""

    def steady_state(self) -> chaostoolkit.StepResult: ...
    def run_rollbacks(self) -> chaostoolkit.StepResult: ...
    def check_probe(self, activity: dict[str, Any]) -> chaostoolkit.StepResult: ...
    def close(self) -> None: ...


SessionFactory = Callable[[dict[str, Any], dict[str, Any], str], Session]


Runner = Callable[[dict[str, Any], ctkrun.Phases, dict[str, Any], Path, "ChaosOptions"], ctkrun.CtkOutcome]
"""Runs the experiment with drill's phases (in a worker thread): chaoslib's own runner by default."""


@dataclass(frozen=True)
class ChaosOptions:
    """``chaos run``'s options for the experiment (``drill run --var/--var-file/--settings/--dry/...``)."""

    variables: dict[str, Any] = field(default_factory=dict)  # --var, converted; they win over --var-file
    var_files: tuple[Path, ...] = ()
    var_file_values: dict[str, Any] = field(default_factory=dict)  # the configuration part of the var files
    settings: dict[str, Any] | None = None  # a Chaos Toolkit settings file (global controls), parsed
    dry: str | None = None
    hypothesis_strategy: str | None = None
    rollback_strategy: str | None = None


def _chaostoolkit_runner(
    experiment: dict[str, Any], phases: ctkrun.Phases, extra_vars: dict[str, Any], log_path: Path, chaos: ChaosOptions
) -> ctkrun.CtkOutcome:
    return ctkrun.run_experiment_with_phases(
        experiment,
        phases=phases,
        extra_vars={**extra_vars, **chaos.variables},
        var_files=chaos.var_files,
        settings=chaos.settings,
        hypothesis_strategy=chaos.hypothesis_strategy,
        rollback_strategy=chaos.rollback_strategy,
        dry=chaos.dry,
        log_path=log_path,
    )


def _chaostoolkit_session(experiment: dict[str, Any], extra_vars: dict[str, Any], log_path: str) -> Session:

    return chaostoolkit.ExperimentSession(experiment, extra_vars=extra_vars, log_path=Path(log_path))


def new_run_id(name: str, now: float) -> str:
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%d-%H%M%S")
    return f"{name}-{stamp}-{secrets.token_hex(2)}"


@dataclass
class _Flags:
    injected: bool = False
    rolled_back: bool = False  # the rollbacks were played (by chaoslib, or by drill when chaoslib could not)
    t0: float | None = None
    experiment: interrupting.Pending[ctkrun.CtkOutcome] | None = None
    ctk_journal: str | None = None  # the Chaos Toolkit journal of the run, as ``chaos run`` writes it
    restore: restoring.RestoreReport | None = None  # set once: the policies are restored exactly once


class Engine:
    """Runs one drill. Construct, then call ``run()`` once (from the main thread to trap signals)."""

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
        session_factory: SessionFactory = _chaostoolkit_session,
        runner: Runner = _chaostoolkit_runner,
        chaos: ChaosOptions | None = None,
    ) -> None:
        self.loaded = loaded
        self.spec = loaded.drill.spec
        self.mode = records.RunMode(self.spec.mode.value)
        self.journal = journal
        self.target = target
        self.paths = paths
        self.clock = clock
        self.timing = timing or settings.Timing()
        self.auto_respond = auto_respond or []
        self.observer = observer
        self.session_factory = session_factory
        self.runner = runner
        self.chaos = chaos or ChaosOptions()
        self.started_at = clock.now()
        self.run_id = new_run_id(loaded.drill.metadata.name, self.started_at)
        self.deadline_at = self.started_at + self.spec.guardrails.max_duration + self.timing.restore_grace_s
        self.token = 1
        self.stop = threading.Event()
        self.abort_reason: str | None = None
        self.taken_over: str | None = None
        self.timed_out = False
        self.flags = _Flags()
        self.units: list[policy_base.Suspender] = []  # what preflight selected, suspended in this order
        self._watch_stop = threading.Event()
        self._restoring = False
        self._seen_seq = 0  # the last event the observer was shown
        self.suspensions = suspending.Suspensions(
            suspending.Context(
                run_id=self.run_id,
                token=self.token,
                deadline_at=self.deadline_at,
                journal=journal,
                target=target,
                clock=clock,
                hooks_dir=paths.hooks_dir,
                request_abort=self.request_abort,
                show=lambda event: self._notify(lambda o: o.on_event(event)),
            )
        )

    # -- journal and observer helpers ---------------------------------------------------------------

    def _notify(self, call: Callable[[Observer], None]) -> None:
        """Tell the observer; an observer that fails (a closed terminal) is dropped, never the run."""
        observer = self.observer
        if observer is None:
            return
        try:
            call(observer)
        except Exception as exc:
            self.observer = None
            with contextlib.suppress(OSError):
                os.write(2, f"drill: the live view failed ({type(exc).__name__}); the run goes on\n".encode())

    def transition(self, state: records.RunState, trigger: str) -> None:
        at = self.clock.now()
        self.journal.set_state(self.run_id, state, actor="drill", trigger=trigger, at=at, token=self.token)
        self._notify(lambda o: o.on_state(state, at))

    def record(self, event: records.Event) -> records.Event:
        return self.record_all([event])[0]

    def record_all(self, events: Sequence[records.Event]) -> list[records.Event]:
        """Events in one journal write (one commit for the preflight's checks, not one each), then shown."""
        seqs = self.journal.append_all(events, token=self.token)  # the store redacts every event at its door
        recorded = [dataclasses.replace(e, seq=seq) for e, seq in zip(events, seqs, strict=True)]
        for event in recorded:
            self._show(event)
        return recorded

    def _show(self, event: records.Event) -> None:
        self._seen_seq = max(self._seen_seq, event.seq)
        self._notify(lambda o: o.on_event(event))

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
        """Stop at the next step and restore. Once restoring, the run's outcome is no longer changed."""
        if self.abort_reason is None and not self._restoring:
            self.abort_reason = redaction.clean(reason)
        self.stop.set()

    # -- the run -----------------------------------------------------------------------------------

    def run(self) -> RunResult:
        with signals.trapped(lambda name: self.request_abort(f"{name} received")):
            self._create_run()
            watcher = threading.Thread(target=self._watch, name="drill-heartbeat", daemon=True)
            watcher.start()
            try:
                session = self._preflight()
                try:
                    return self._mutating_phases(session)
                finally:
                    with contextlib.suppress(Exception):
                        session.close()
            finally:
                self._watch_stop.set()
                watcher.join(timeout=5.0)

    def _create_run(self) -> None:
        definition = self.loaded.drill.model_dump(mode="json", by_alias=True)
        self.journal.create_run(
            records.RunRecord(
                run_id=self.run_id,
                drill_name=self.loaded.drill.metadata.name,
                drill_path=str(self.loaded.path.resolve()),
                mode=self.mode,
                target_key=self.target.key,
                state=S.PLANNED,
                created_at=self.started_at,
                updated_at=self.started_at,
                pid=os.getpid(),
                host=processes.owner_id().split(":", 1)[0],
                deadline_at=self.deadline_at,
                definition=redaction.clean_value(definition),
                experiment=redaction.redact_experiment(self.loaded.experiment),
                owner=processes.owner_id(),
                token=self.token,
                heartbeat_at=self.started_at,
            )
        )
        self._notify(lambda o: o.on_state(S.PLANNED, self.started_at))

    def _watch(self) -> None:
        """Heartbeat the ownership record; notice ``drill abort`` from any machine at any phase."""
        last_beat = time.monotonic()
        while not self._watch_stop.wait(self.timing.abort_poll_s):
            try:
                if time.monotonic() - last_beat >= self.timing.heartbeat_s:
                    lost = self.target.renew_lock(run_id=self.run_id)
                    if lost is not None and not self.stop.is_set():
                        self.request_abort(f"target lock lost: {lost}")
                    self.journal.heartbeat(self.run_id, token=self.token, at=self.clock.now())
                    last_beat = time.monotonic()
                if not self.stop.is_set():
                    for command in self.journal.events(self.run_id, kinds=[records.EventKind.COMMAND]):
                        if command.name == records.Command.ABORT.value:
                            text = str(command.data.get("text", ""))
                            self.request_abort(f"aborted by {command.actor}" + (f": {text}" if text else ""))
                            break
            except errors.OwnershipLostError as exc:
                self.taken_over = str(exc)
                self.request_abort(f"taken over: {exc}")
                return
            except Exception:  # a journal hiccup: the main thread's own writes will say so
                continue

    def _preflight(self) -> Session:
        """Every check before any mutation; a failure (of any kind) ends the run ``failed``, nothing changed."""
        session: Session | None = None
        try:
            self.transition(S.PREFLIGHT, "drill run")
            hooks.pause_point("preflight", run_id=self.run_id, hooks_dir=self.paths.hooks_dir)
            checks: list[preflight.Check] = []
            try:
                session = self.session_factory(
                    self.loaded.experiment,
                    self._experiment_vars(),
                    str(self.paths.home / "runs" / self.run_id / "chaostoolkit.log"),
                )
            except Exception as exc:
                checks.append(preflight.Check("experiment", False, _reason(exc, "cannot load the experiment")))
            if session is not None:
                outcome = preflight.run_checks(
                    self.loaded,
                    self.target,
                    self.journal,
                    run_id=self.run_id,
                    now=self.clock.now(),
                    deadline_at=self.deadline_at,
                    steady_state=session,
                )
                checks, self.units = outcome.checks, outcome.units
            if self.stop.is_set():
                checks.append(preflight.Check("not interrupted", False, f"{self.abort_reason} before any change"))
            self.record_all(preflight.as_events(checks, run_id=self.run_id, at=self.clock.now()))
            failed = preflight.failures(checks)
        except errors.OwnershipLostError:
            raise
        except Exception as exc:
            failed = [f"preflight could not complete: {_reason(exc, 'unexpected error')}"]
        if failed:
            self._fail(failed)
            if session is not None:
                with contextlib.suppress(Exception):
                    session.close()
            raise errors.PreflightError(failed)
        assert session is not None
        return session

    def _fail(self, failures: list[str]) -> None:
        """End a run whose preflight failed: nothing was mutated; record why, free the target."""
        at = self.clock.now()
        with contextlib.suppress(Exception):
            self.record(
                records.action(
                    self.run_id,
                    at,
                    "preflight",
                    actor="drill",
                    trigger="preflight",
                    expected="every check passes",
                    actual="FAILED: " + "; ".join(failures),
                )
            )
        with contextlib.suppress(Exception):
            self.transition(S.FAILED, "preflight failed")
        with contextlib.suppress(Exception):
            self.journal.finish(self.run_id, outcome=records.Outcome.FAILED, report_dir=None, at=at, token=self.token)
        with contextlib.suppress(Exception):
            self.journal.unlock_target(self.target.key, run_id=self.run_id)
        self.target.unlock(run_id=self.run_id)

    def _mutating_phases(self, session: Session) -> RunResult:
        """chaoslib runs the experiment in a worker; this thread suspends, responds and restores."""
        relay = relaying.Relay()
        experiment = self.flags.experiment = interrupting.Pending(
            lambda: self.runner(
                self.loaded.experiment,
                relay,
                self.target.experiment_vars(),
                self.paths.home / "runs" / self.run_id / "chaostoolkit.log",
                self.chaos,
            ),
            name="drill-experiment",
        )
        try:
            self._conduct(relay, experiment, session)
            if experiment.done and not self.flags.injected and not self.suspensions and not self.stop.is_set():
                # chaoslib ended before the method: its steady state did not hold, or a control (a
                # safeguard) refused to go on. Nothing was changed: a failed preflight.
                failed = [f"experiment: {experimenting.why_no_method(experiment)}; nothing was changed"]
                self._fail(failed)
                raise errors.PreflightError(failed)
        except errors.OwnershipLostError as exc:
            self.taken_over = str(exc)
        except errors.PreflightError:
            raise
        except suspending.ClaimRefusedError as exc:
            # Another run claimed the object between our preflight and our claim: nothing of ours
            # was changed, so this ends exactly like a preflight that saw its marker.
            relay.close()
            self.suspensions.release_unclaimed()
            failed = [f"target not locked: {exc}"]
            self._fail(failed)
            raise errors.PreflightError(failed) from None
        except BaseException as exc:  # any failure still restores; the reason goes in the journal and report
            self.request_abort(f"error: {_reason(exc, type(exc).__name__)}")
            if not isinstance(exc, Exception):
                relay.close()
                self._restore_first(session)
                raise
        finally:
            relay.close()
        return self._restore_first(session)

    def _conduct(
        self, relay: relaying.Relay, experiment: interrupting.Pending[ctkrun.CtkOutcome], session: Session
    ) -> None:
        """Answer chaoslib's phase calls until the experiment ends or the run must stop."""
        while not self.stop.is_set():
            request = relay.next(self.timing.abort_poll_s)
            if request is None:
                if experiment.done:
                    return
                continue
            try:
                if request.phase == "before_method":
                    self._before_method()
                    request.stop = self.stop.is_set()
                elif request.phase == "after_method":
                    self._after_method(session, request.runs)
                elif self.flags.injected or self.suspensions:
                    self.request_abort("Chaos Toolkit interrupted the experiment")
                # else: interrupted before anything changed (a safeguard): ends as a failed preflight
            except BaseException:
                request.stop = True  # whatever went wrong here, the experiment must not go on to the fault
                raise
            finally:
                request.answered.set()

    def _experiment_vars(self) -> dict[str, Any]:
        """Values for drill's own probes: the target's, then the var files', then --var (as chaos merges them)."""
        return {**self.target.experiment_vars(), **self.chaos.var_file_values, **self.chaos.variables}

    def _before_method(self) -> None:
        """chaoslib's steady state held and every other control let the run go on: suspend, then the fault."""
        self.transition(S.SUSPENDING, "preflight passed")
        self._suspend_all()
        if not self.stop.is_set():
            self.transition(S.INJECTING, "automation suspended")
            self.flags.injected = True  # from here on, rollbacks must run whatever happens
            self._inject_started = self.clock.now()

    def _after_method(self, session: Session, runs: list[dict[str, Any]]) -> None:
        """The method ran: the fault is active; the humans respond; the automation comes back first."""
        started = getattr(self, "_inject_started", self.clock.now())
        summary = experimenting.summary(runs)
        succeeded = [r for r in runs if r.get("status") == "succeeded"]
        self.action(
            "inject",
            trigger="injecting",
            expected="fault active (method succeeded)",
            actual=summary,
            started=started,
            ok=len(succeeded) == len(runs),
        )
        hooks.pause_point("injecting", run_id=self.run_id, hooks_dir=self.paths.hooks_dir)
        if self.stop.is_set():
            return
        if runs and not succeeded:
            self.request_abort(f"fault injection failed: {summary}")
            return
        self.flags.t0 = self.clock.now()
        self.timeline(TL.FAULT_ACTIVE, method=summary)
        if self.spec.mode is models.Mode.NO_AUTOMATION:
            responders = [p.name for p in self.spec.participants if p.role is models.Role.RESPONDER]
            self.timeline(TL.NOTIFIED, channel="console", participants=responders)
        self.transition(S.RESPONDING, "fault active")
        hooks.pause_point("responding", run_id=self.run_id, hooks_dir=self.paths.hooks_dir)
        seen = responding.respond(self._responding_context(session))
        self.timed_out = seen.timed_out
        # Restore before chaoslib goes on to its hypothesis after the method and its rollbacks.
        self._restore_policies_once()

    def _responding_context(self, session: Session) -> responding.Context:
        assert self.flags.t0 is not None, "responding starts only once the fault is active"

        def take_commands() -> list[records.Event]:
            return self.journal.take_commands(self.run_id, token=self.token)

        def send_command(event: records.Event) -> None:
            self.journal.append(event, token=self.token)

        def action(name: str, **kwargs: Any) -> None:
            self.action(name, **kwargs)

        return responding.Context(
            run_id=self.run_id,
            spec=self.spec,
            clock=self.clock,
            stop=self.stop,
            t0=self.flags.t0,
            started_at=self.started_at,
            poll_s=self.timing.command_poll_s,
            probes=session,
            take_commands=take_commands,
            send_command=send_command,
            timeline=self.timeline,
            action=action,
            request_abort=self.request_abort,
            simulate_mitigation=self.target.simulate_mitigation,
            auto_respond=list(self.auto_respond),
            watch=lambda: self.target.watch_conditions(self.spec.detection.conditions, now=self.clock.now),
        )

    def _suspend_all(self) -> None:
        self.suspensions.suspend_all(self.units, concurrency=self.target.concurrency, stop=self.stop)

    # -- restore first, then everything else ---------------------------------------------------------

    def _restore_policies_once(self) -> restoring.RestoreReport:
        """Restore every claimed policy, once (after the response, or at once on an abort)."""
        if self.flags.restore is not None:
            return self.flags.restore
        self._restoring = True
        problems: list[str] = []
        writer = restoring.TolerantJournal(self.journal, token=self.token, errors_out=problems)
        trigger = self.abort_reason or ("timed out" if self.timed_out else "run complete")
        # The state changes are attempted first so the journal says where the run is, but a
        # journal that fails here costs nothing: the restores below run regardless.
        self._enter_restoring(writer, trigger)
        report = restoring.restore_suspensions(
            self.journal,
            list(self.suspensions.claimed),
            clock=self.clock,
            actor="drill",
            trigger=trigger,
            token=self.token,
            hooks_dir=self.paths.hooks_dir,
            target_for=self._target_for,
        )
        if self.suspensions:
            writer.append(
                records.timeline(
                    self.run_id,
                    self.clock.now(),
                    TL.RESTORED,
                    actor="drill",
                    restored=report.restored,
                    failed=report.failed,
                    **({"gone": report.gone} if report.gone else {}),
                )
            )
        report.journal_errors[:0] = problems
        self.flags.restore = report
        return report

    def _restore_first(self, session: Session) -> RunResult:
        self._restoring = True
        if self.taken_over is not None:
            return self._result(None, None, restoring.RestoreReport(), [])
        problems: list[str] = []
        writer = restoring.TolerantJournal(self.journal, token=self.token, errors_out=problems)
        try:
            report = self._restore_policies_once()
            problems.extend(report.journal_errors)
            collected = experimenting.collect(
                self.flags.experiment,
                writer,
                run_id=self.run_id,
                clock=self.clock,
                grace_s=self.timing.experiment_grace_s,
                injected=self.flags.injected,
            )
            self.flags.ctk_journal = collected.ctk_journal
            self.flags.rolled_back = self.flags.rolled_back or collected.rolled_back
            if collected.abort_reason is not None and self.abort_reason is None:
                self.abort_reason = collected.abort_reason
            if self.flags.injected and not self.flags.rolled_back:
                self._rollback(session, writer)
        except errors.OwnershipLostError as exc:
            self.taken_over = str(exc)
            return self._result(None, None, restoring.RestoreReport(), problems)
        self._replay_to_observer()
        finished = finishing.finish_run(
            self.journal,
            self.run_id,
            token=self.token,
            clock=self.clock,
            archive=self.paths.archive,
            actor="drill",
            trigger="restored" if report.ok else "restore NOT verified",
            extra_files={"journal.json": self.flags.ctk_journal} if self.flags.ctk_journal else None,
        )
        problems.extend(finished.problems)
        self.target.unlock(run_id=self.run_id)
        self._replay_to_observer()
        report_dir = str(finished.report_dir) if finished.report_dir else None
        result = self._result(finished.outcome, report_dir, report, problems)
        return dataclasses.replace(result, report_problem=finished.report_problem, index_problem=finished.index_problem)

    def _replay_to_observer(self) -> None:
        """Show the observer what the restore path journaled, now that every policy is back.

        Observers are never called before the restores: a terminal that blocks (a stopped pager,
        a full pipe) must not hold a suspended policy. A journal that cannot be read shows nothing.
        """
        if self.observer is None:
            return
        try:
            written = self.journal.events(self.run_id, after_seq=self._seen_seq)
        except Exception:
            return
        for event in written:
            self._seen_seq = max(self._seen_seq, event.seq)
            self._notify(_show(event))

    def _enter_restoring(self, writer: restoring.TolerantJournal, trigger: str) -> None:
        if self.abort_reason is not None:
            now = self.clock.now()
            writer.append(records.timeline(self.run_id, now, TL.ABORTED, actor="drill", reason=self.abort_reason))
            writer.attempt(
                "journal aborting",
                lambda: self.journal.set_state(
                    self.run_id, S.ABORTING, actor="drill", trigger=trigger, at=now, token=self.token
                ),
            )
        writer.attempt(
            "journal restoring",
            lambda: self.journal.set_state(
                self.run_id, S.RESTORING, actor="drill", trigger=trigger, at=self.clock.now(), token=self.token
            ),
        )

    def _rollback(self, session: Session, writer: restoring.TolerantJournal) -> None:
        """chaoslib could not play the rollbacks (it failed, or has not finished): drill plays them."""
        if recovery.play_rollbacks(
            writer, self.run_id, session.run_rollbacks, clock=self.clock, actor="drill", trigger="restoring"
        ):
            self.flags.rolled_back = True

    def _target_for(self, key: str) -> target_base.Target:
        if key == self.target.key:
            return self.target
        from orchestrator.targets import registry

        return registry.from_key(key)

    def _result(
        self,
        outcome: records.Outcome | None,
        report_dir: str | None,
        report: restoring.RestoreReport,
        problems: list[str],
    ) -> RunResult:
        return RunResult(
            run_id=self.run_id,
            outcome=outcome,
            report_dir=report_dir,
            restore_ok=report.ok,
            abort_reason=self.abort_reason,
            journal_ok=not problems,
            taken_over=self.taken_over,
            problems=tuple(problems),
            restored=tuple(report.restored),
            failed=tuple(report.failed),
            gone=tuple(report.gone),
        )

    def elapsed(self) -> float:
        return self.clock.now() - self.started_at


def _show(event: records.Event) -> Callable[[Observer], None]:
    """How the observer is told about one journaled event (a transition is a state)."""
    if event.kind is records.EventKind.TRANSITION:
        state = records.RunState(event.name)
        return lambda o: o.on_state(state, event.at)
    return lambda o: o.on_event(event)


def _reason(exc: BaseException, default: str) -> str:
    return redaction.clean(str(exc)) or default


__all__ = [
    "ChaosOptions",
    "Engine",
    "ExitCode",
    "Observer",
    "RunResult",
    "Runner",
    "Session",
    "SessionFactory",
    "new_run_id",
]
