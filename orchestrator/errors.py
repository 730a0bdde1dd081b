"""The errors drill raises, one hierarchy for the whole package.

    DrillError                      base: every error a user can see
    +-- DefinitionError             a drill definition is invalid (file, line, field, fix)
    |   +-- DefinitionErrors        several DefinitionError at once, from one file
    +-- PreflightError              a check before any mutation failed; nothing was changed
    +-- TargetError                 the target (sandbox, cluster) refused or is unreachable
    +-- PolicyError                 a suspender could not snapshot/suspend/restore/verify
    |   +-- RestoreVerificationError  a restore did not read back as the original value
    |   +-- MarkerConflictError     another run's marker is on the object
    +-- ExperimentError             Chaos Toolkit could not load, validate or run an activity
    +-- JournalError                the journal could not be read or written
    |   +-- RunNotFoundError        no run with that id (or no active run)
    |   +-- OwnershipLostError      another process took over this run; this one writes nothing more
    |   +-- StateConflictError      a compare-and-set found another state than expected
    |   +-- JournalReadOnlyError    a write on a journal opened read-only
    |   +-- JournalUnavailableError the journal cannot be opened or read: missing, damaged, unreachable
    +-- ReportError                 a report could not be read (damaged, or an unknown schema version)
    +-- ResponseError               a responder command is not valid for this run now

Adapters translate their dependency's exceptions into these with ``raise ... from``,
so the CLI can print one clear line and never a traceback.
"""

from __future__ import annotations

from collections.abc import Sequence


class DrillError(Exception):
    """Base of every error drill reports to a user."""


class DefinitionError(DrillError):
    """A drill definition is invalid: names the file, line, field and what would be valid."""

    def __init__(self, *, file: str, field: str, message: str, line: int | None = None) -> None:
        self.file = file
        self.field = field
        self.message = message
        self.line = line
        where = f"{file}:{line}" if line is not None else file
        super().__init__(f"{where}: {field}: {message}")


class DefinitionErrors(DrillError):  # noqa: N818 (a collection of DefinitionError)
    """All the problems found in one definition file."""

    def __init__(self, errors: Sequence[DefinitionError]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


class PreflightError(DrillError):
    """A preflight check failed; nothing was mutated."""

    def __init__(self, failures: Sequence[str]) -> None:
        self.failures = list(failures)
        lines = "\n".join(f"  - {f}" for f in self.failures)
        super().__init__(f"preflight failed, nothing was changed:\n{lines}")


class TargetError(DrillError):
    """The target refused a request or cannot be reached."""


class PolicyError(DrillError):
    """A suspender could not snapshot, suspend, restore or verify a policy."""


class RestoreVerificationError(PolicyError):
    """A restored policy did not read back as its original value."""


class MarkerConflictError(PolicyError):
    """Another run's marker is on the object: it is that run's to restore, not ours to suspend or restore."""


class RestoreConflictError(PolicyError):
    """Someone changed a suspended field during the drill: it is not overwritten (``drill restore --force`` does)."""


class ObjectGoneError(PolicyError):
    """The suspended object was deleted, or replaced by a new one, during the drill: reported, never recreated."""


class ExperimentError(DrillError):
    """Chaos Toolkit could not load, validate or run part of an experiment."""


class JournalError(DrillError):
    """The journal could not be read or written."""


class RunNotFoundError(JournalError):
    """No run matches the id given (or no run is active)."""


class OwnershipLostError(JournalError):
    """Another process took over this run; this process writes nothing more."""


class StateConflictError(JournalError):
    """A compare-and-set found the run or suspension in another state than the caller expected."""


class JournalReadOnlyError(JournalError):
    """A write was attempted on a journal opened read-only."""


class JournalUnavailableError(JournalError):
    """The journal cannot be opened or read: missing, damaged, unreadable or unreachable."""


class ReportError(DrillError):
    """A report could not be read (missing, damaged, or of a schema version this drill does not read)."""


class ResponseError(DrillError):
    """A responder command is not valid for this run now."""
