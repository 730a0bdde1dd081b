"""Deterministic, local Chaos Toolkit activities for the compatibility suite: each appends a line to a file."""

from __future__ import annotations

import os
import time
from pathlib import Path


def mark(path: str, label: str, delay: float = 0.0, fail: bool = False) -> str:
    """Append ``label`` (and, with a delay, ``label:start``/``label:end`` with timestamps); ``fail`` raises."""
    log = Path(path)
    if delay:
        _append(log, f"{label}:start {time.time():.6f}")
        time.sleep(delay)  # the activity's own duration, so background activities can overlap
        _append(log, f"{label}:end {time.time():.6f}")
    else:
        _append(log, label)
    if fail:
        raise RuntimeError(f"{label} failed on purpose")
    return label


def healthy(path: str, label: str = "ssh") -> bool:
    """A steady-state probe: healthy until ``break_it`` ran."""
    _append(Path(path), label)
    return not Path(path + ".broken").exists()


def break_it(path: str) -> str:
    _append(Path(path), "break")
    Path(path + ".broken").write_text("broken", encoding="utf-8")
    return "broken"


def value(path: str, label: str, result: object) -> object:
    _append(Path(path), label)
    return result


def env_path() -> str:
    """The log path, for a dynamic configuration entry."""
    return os.environ["CTK_TEST_LOG"] + ""


def _append(log: Path, line: str) -> None:
    with log.open("a", encoding="utf-8") as f:
        f.write(line + "\n")
