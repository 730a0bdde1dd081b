"""Test-only pause points: with ``DRILL_TEST_PAUSE_AT=<step>`` a run stops at that step.

The crash-safety tests use it to SIGKILL ``drill run`` at a known step (suspending, injecting,
responding, restoring) and then prove ``drill restore`` puts everything back, or to hold a run
"hung" past its deadline and let it wake up after another process took it over. The run
announces the pause by creating ``$DRILL_HOME/hooks/<run-id>.<step>.paused`` and waits until it
is killed or ``<run-id>.<step>.resume`` appears. Unset, it costs one dict lookup.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

STEPS = ("preflight", "suspending", "injecting", "responding", "restoring")
ENV = "DRILL_TEST_PAUSE_AT"


def pause_point(step: str, *, run_id: str, hooks_dir: Path) -> None:
    if os.environ.get(ENV) != step:
        return
    hooks_dir.mkdir(parents=True, exist_ok=True)
    (hooks_dir / f"{run_id}.{step}.paused").write_text(str(os.getpid()), encoding="utf-8")
    resume = hooks_dir / f"{run_id}.{step}.resume"
    idle = threading.Event()
    while not resume.exists():
        idle.wait(0.05)
