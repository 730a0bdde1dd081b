"""Durations as people write them in drill files: ``90s``, ``5m``, ``1h30m``, ``250ms`` or a number of seconds."""

from __future__ import annotations

import re

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: object) -> float:
    """Seconds from ``value``; raises ValueError with the accepted forms on anything else."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 30s, 5m or 1h30m, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        if text.startswith("-"):
            raise ValueError(f"a duration cannot be negative, got {value!r}")
        pos = 0
        seconds = 0.0
        for match in _PART.finditer(text):
            if match.start() != pos:
                break
            seconds += float(match.group(1)) * _UNIT_S[match.group(2)]
            pos = match.end()
        if pos != len(text) or not text:
            raise ValueError(f"expected a duration such as 30s, 5m or 1h30m, got {value!r}")
    else:
        raise ValueError(f"expected a duration such as 30s, 5m or 1h30m, got {value!r}")
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative, got {value!r}")
    return seconds


def format_duration(seconds: float | None) -> str:
    """``1m05.2s``-style text for reports and the live view; ``-`` for None."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 60:
        return f"{int(minutes)}m{rest:04.1f}s"
    hours, minutes = divmod(minutes, 60)
    return f"{int(hours)}h{int(minutes):02d}m{int(rest):02d}s"
