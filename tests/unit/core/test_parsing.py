"""Durations, cron expressions and the simulated responder's steps."""

from __future__ import annotations

import pytest

from orchestrator import durations, records
from orchestrator.definitions import cron
from orchestrator.run import autorespond


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90.0), ("5m", 300.0), ("1h30m", 5400.0), ("250ms", 0.25), (12, 12.0), (1.5, 1.5), ("2d", 172800.0)],
)
def test_durations(text: object, seconds: float) -> None:
    assert durations.parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["-5s", "soon", "", "5 minutes", "5x", True, None, [1], "1h-5m"])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        durations.parse_duration(text)


@pytest.mark.parametrize(("seconds", "text"), [(None, "-"), (2.04, "2.0s"), (65.2, "1m05.2s"), (3725, "1h02m05s")])
def test_format_duration(seconds: float | None, text: str) -> None:
    assert durations.format_duration(seconds) == text


@pytest.mark.parametrize("expr", ["0 10 1 */3 *", "*/5 * * * *", "0 9 * * mon-fri", "30 2 1,15 jan,jul 0"])
def test_valid_cron(expr: str) -> None:
    assert cron.validate_cron(expr) == expr


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("0 10 * *", "5 fields"),
        ("61 * * * *", "minute field: 61 is outside 0-59"),
        ("0 25 * * *", "hour"),
        ("0 0 0 * *", "day of month"),
        ("0 0 * 13 *", "month"),
        ("*/0 * * * *", "step"),
        ("5-1 * * * *", "backwards"),
        ("x * * * *", "not a number"),
    ],
)
def test_invalid_cron(expr: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cron.validate_cron(expr)


def test_autorespond_steps_sorted() -> None:
    steps = autorespond.parse("resolve=8s, ack=2s,mitigate=6s,diagnose=4s")
    assert [(s.command, s.delay_s) for s in steps] == [
        (records.Command.ACK, 2.0),
        (records.Command.DIAGNOSED, 4.0),
        (records.Command.MITIGATED, 6.0),
        (records.Command.RESOLVE, 8.0),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "at least one"),
        ("ack", "KEY=DURATION"),
        ("wave=1s", "KEY=DURATION"),
        ("ack=1s,ack=2s", "twice"),
        ("ack=-1s", "negative"),
    ],
)
def test_autorespond_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        autorespond.parse(text)
