"""What ``drill run`` ends with: the run's result and its exit status, one meaning each."""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator import records


class ExitCode:
    """``drill run``'s exit status."""

    COMPLETED = 0
    ERROR = 1
    INVALID = 2  # invalid definition or failed preflight: nothing was changed
    NOT_MET = 3  # timed out / not recovered / deviated
    ABORTED = 4  # aborted, automation restored
    NOT_RESTORED = 5  # automation NOT restored: act now
    NOT_JOURNALED = 6  # automation restored and verified, but not everything was recorded (journal or report)
    TAKEN_OVER = 7  # another process took the run over and restores it; this one wrote nothing more


@dataclass(frozen=True)
class RunResult:
    run_id: str
    outcome: records.Outcome | None
    report_dir: str | None
    restore_ok: bool
    abort_reason: str | None
    journal_ok: bool = True
    taken_over: str | None = None
    problems: tuple[str, ...] = ()
    restored: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    gone: tuple[str, ...] = ()  # deleted or replaced during the drill: reported, never recreated
    report_problem: str | None = None
    index_problem: str | None = None

    @property
    def exit_code(self) -> int:
        if self.taken_over is not None:
            return ExitCode.TAKEN_OVER
        if not self.restore_ok:
            return ExitCode.NOT_RESTORED
        if not self.journal_ok or self.report_problem is not None:
            return ExitCode.NOT_JOURNALED
        if self.outcome is records.Outcome.ABORTED:
            return ExitCode.ABORTED
        if self.outcome in (records.Outcome.TIMED_OUT, records.Outcome.NOT_RECOVERED, records.Outcome.DEVIATED):
            return ExitCode.NOT_MET
        return ExitCode.COMPLETED
