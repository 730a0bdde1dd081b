"""An activity control that interrupts the run before the activity named in its ``name`` argument."""

from __future__ import annotations

from typing import Any

from chaoslib.exceptions import InterruptExecution


def before_activity_control(context: Any, name: str = "", **kwargs: Any) -> None:
    if context.get("name") == name:
        raise InterruptExecution(f"interrupted before {name}")
