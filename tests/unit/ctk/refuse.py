"""A safeguard-style control: refuses to run the experiment (as chaosaddons' safeguards do during a freeze)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from chaoslib.exceptions import InterruptExecution


def before_experiment_control(context: Any, **kwargs: Any) -> None:
    with Path(os.environ["CTK_TEST_LOG"]).open("a", encoding="utf-8") as f:
        f.write("safeguard:refused\n")
    raise InterruptExecution("change freeze: this experiment may not run now")
