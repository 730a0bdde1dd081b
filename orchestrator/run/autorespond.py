"""The simulated responder of ``--auto-respond``, for demos and tests.

``ack=2s,diagnose=4s,mitigate=6s,resolve=8s`` means: acknowledge 2 s after the notification,
declare the cause at 4 s, mitigate at 6 s (really do what a responder would: restart the sandbox
service) and resolve at 8 s, all counted from the moment the fault is active (the notification is
posted at that same moment). ``hint=3s`` asks for a hint; ``abort=5s`` aborts the drill.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator import durations, records

_KEYS: dict[str, records.Command] = {
    "ack": records.Command.ACK,
    "diagnose": records.Command.DIAGNOSED,
    "mitigate": records.Command.MITIGATED,
    "resolve": records.Command.RESOLVE,
    "hint": records.Command.HINT,
    "abort": records.Command.ABORT,
}


@dataclass(frozen=True)
class Step:
    command: records.Command
    delay_s: float


def parse(text: str) -> list[Step]:
    """Steps sorted by delay; ValueError naming the bad part and the accepted keys."""
    steps: list[Step] = []
    seen: set[str] = set()
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in _KEYS:
            raise ValueError(
                f"--auto-respond: {part!r} is not KEY=DURATION with KEY one of {', '.join(_KEYS)}; "
                "e.g. ack=2s,mitigate=6s,resolve=8s"
            )
        if key in seen:
            raise ValueError(f"--auto-respond: {key} is given twice")
        seen.add(key)
        try:
            delay = durations.parse_duration(value)
        except ValueError as exc:
            raise ValueError(f"--auto-respond: {key}: {exc}") from None
        steps.append(Step(_KEYS[key], delay))
    if not steps:
        raise ValueError("--auto-respond: give at least one step, e.g. ack=2s,mitigate=6s,resolve=8s")
    return sorted(steps, key=lambda s: s.delay_s)
