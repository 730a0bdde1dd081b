"""Where drill keeps its state, grouped and documented; every field can be set from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, kw_only=True)
class Paths:
    """Locations on this machine.

    ``home`` holds the journal (one SQLite file for every run, so ``drill ack`` from another
    terminal reaches the running drill) and the local sandbox. It defaults to the XDG state
    directory because runs must outlive the working directory they were started from.
    ``archive`` is where reports go; relative to the current directory by default so a team
    running from its repository finds them under ``reports/archive``.
    """

    home: Path
    archive: Path

    @property
    def journal_db(self) -> Path:
        return self.home / "journal.db"

    @property
    def sandbox_home(self) -> Path:
        return self.home / "sandbox"

    @property
    def hooks_dir(self) -> Path:
        return self.home / "hooks"


@dataclass(frozen=True, kw_only=True)
class Timing:
    """Polling and grace periods, in seconds.

    ``command_poll_s``: how often a running drill reads responder commands from the journal;
    0.2 s keeps a typed ``drill ack`` within a fifth of a second of its real time.
    ``restore_grace_s``: added to a drill's max duration to form each marker's deadline, so a
    healthy run always restores before ``drill restore --expired`` would.
    ``heartbeat_s``: how often a run refreshes its ownership record; ``lease_s``: a run whose
    heartbeat is older than this is taken for gone (its process died or its host is unreachable),
    so ``drill restore`` may take it over before its deadline. 15 s leaves room for a slow shared
    database while a crashed run is restorable within a quarter of a minute.
    ``abort_poll_s``: how often a run looks for ``drill abort`` in the journal in every phase, so
    an abort acts within a second whatever the experiment is doing.
    ``experiment_grace_s``: once the policies are restored, how long the run waits for Chaos
    Toolkit to finish the experiment (its hypothesis after the method, its rollbacks) before
    drill plays the rollbacks itself and ends.
    """

    command_poll_s: float = 0.2
    restore_grace_s: float = 120.0
    heartbeat_s: float = 2.0
    lease_s: float = 15.0
    abort_poll_s: float = 0.25
    experiment_grace_s: float = 120.0


def default_home() -> Path:
    env = os.environ.get("DRILL_HOME")
    if env:
        return Path(env).expanduser()
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "drill"


def default_archive() -> Path:
    env = os.environ.get("DRILL_ARCHIVE")
    return Path(env).expanduser() if env else Path("reports") / "archive"


def paths_from_env(*, home: str | None = None, archive: str | None = None) -> Paths:
    """Paths from explicit options first, then ``DRILL_HOME`` / ``DRILL_ARCHIVE``, then defaults."""
    return Paths(
        home=Path(home).expanduser() if home else default_home(),
        archive=Path(archive).expanduser() if archive else default_archive(),
    )
