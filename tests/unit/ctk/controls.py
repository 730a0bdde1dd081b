"""Chaos Toolkit Python controls for the compatibility suite: every hook appends ``control:<hook>`` to the log."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def _log(line: str) -> None:
    with Path(os.environ["CTK_TEST_LOG"]).open("a", encoding="utf-8") as f:
        f.write(line + "\n")


def configure_control(configuration: Any = None) -> None:
    _log("control:configure")


def cleanup_control() -> None:
    _log("control:cleanup")


def before_experiment_control(context: Any, **kwargs: Any) -> None:
    _log("control:before_experiment")


def after_experiment_control(context: Any, state: Any = None, **kwargs: Any) -> None:
    _log(f"control:after_experiment status={state['status'] if state else None}")


def before_hypothesis_control(context: Any, **kwargs: Any) -> None:
    _log("control:before_hypothesis")


def after_hypothesis_control(context: Any, **kwargs: Any) -> None:
    _log("control:after_hypothesis")


def before_method_control(context: Any, **kwargs: Any) -> None:
    _log("control:before_method")


def after_method_control(context: Any, state: Any = None, **kwargs: Any) -> None:
    _log(f"control:after_method runs={len(state or [])}")


def before_rollback_control(context: Any, **kwargs: Any) -> None:
    _log("control:before_rollback")


def after_rollback_control(context: Any, **kwargs: Any) -> None:
    _log("control:after_rollback")


def before_activity_control(context: Any, **kwargs: Any) -> None:
    _log(f"control:before_activity {context.get('name')}")


def after_activity_control(context: Any, **kwargs: Any) -> None:
    _log(f"control:after_activity {context.get('name')}")
