"""Cron parity: drill reads ``schedule.cron`` as a crontab line, and APScheduler fires exactly then.

For every expression in the table, drill's verdict is the expected one; a valid one becomes an APScheduler
trigger whose next five fire times equal those of a brute-force reference matcher written here for the
standard crontab meaning (day of week 0 or 7 = Sunday); an invalid one is refused by APScheduler too, unless
the table says why drill is stricter on purpose.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger

from orchestrator import errors
from orchestrator.adapters import scheduling
from orchestrator.definitions import cron, loading
from tests.unit.definitions import hostile

START = datetime(2026, 3, 7, 13, 47, 21, tzinfo=UTC)  # a Saturday afternoon, not on a minute

VALID = [
    "0 10 * * 1",  # Mondays (APScheduler's from_crontab: Tuesdays)
    "0 10 * * 7",  # Sundays (from_crontab refuses 7)
    "0 10 * * 0",  # Sundays (from_crontab: Mondays)
    "0 10 * * mon-fri",
    "0 10 * * 1-5",
    "*/15 * * * *",
    "0 10 1 */3 *",
    "0 10 * * 5-7",  # Friday to Sunday
    "0 10 * * 0-6",
    "0 0 * * */2",  # Sunday, Tuesday, Thursday, Saturday (from_crontab: Mon, Wed, Fri, Sun)
    "0 10 * * 1-7/2",  # Monday, Wednesday, Friday, Sunday
    "30 8 * * sat,sun",
    "0 10 * * SUN",
    "0 9-17/2 * * 1-5",
    "0 0 29 2 *",  # leap days only
    "0 12 15 jan,jul *",
    "5,35 */6 * * *",
    "59 23 31 12 *",
    "0 0 31 * *",  # seven months a year
    "* * * * *",
    "0 0 1 * 1",  # the 1st of each month and every Monday (CronTrigger alone: only a Monday the 1st)
    "30 2 1,15 jan,jul 0",  # either day field, as crontab reads it
    "0 0 31 2 1",  # February 31 never comes, but February Mondays do
]

# (expression, what must be in drill's message, why APScheduler accepts it if it does)
INVALID = [
    ("0 0 31 2 *", "never run", "APScheduler builds it and searches until the year 9999 for a day that never comes"),
    ("60 * * * *", "minute field: 60 is outside 0-59", ""),
    ("0 24 * * *", "hour field", ""),
    ("0 10 0 * *", "day of month field", ""),
    ("0 10 * 13 *", "month field", ""),
    ("0 10 * * 8", "day of week field: 8 is outside 0-7, where 0 or 7 = Sunday", ""),
    ("0 10 * * 5-1", "day of week field: the range '5-1' runs backwards", ""),
    ("0 10 * * fri-mon", "runs backwards", ""),
    ("*/0 * * * *", "minute field: the step 0", ""),
    ("*/61 * * * *", "minute field: the step 61", ""),
    ("0 10 * * 1 *", "5 fields", ""),
    ("@daily", "'0 0 * * *'", ""),
    ("a b c d e", "minute field: 'a' is not a number", ""),
    ("0 10 * * mon#1", "day of week field", "APScheduler reads 'mon' and ignores what follows"),
    ("0 0 */2 * 1", "write the days out", "Vixie cron runs on days matching both, POSIX either: ambiguous"),
    ("5/15 * * * *", "a step needs * or a range", "a step on a single value means different things to different crons"),
    ("0 10 last * *", "day of month field", "'last' is APScheduler's own extension, not crontab"),
]


# --------------------------------------------------------------------------------------------------------------------
# The reference: the standard crontab meaning, minute by minute on each matching day, written independently.
_NAMES = {
    3: ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"],
    4: ["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
}
_RANGES = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]


def _number(text: str, index: int) -> int:
    names = _NAMES.get(index, [])
    return names.index(text) + (1 if index == 3 else 0) if text in names else int(text)


def _reference_set(field: str, index: int) -> set[int]:
    low, high = _RANGES[index]
    selected: set[int] = set()
    for item in field.lower().split(","):
        span, _, step = item.partition("/")
        if span == "*":
            first, last = low, high
        elif "-" in span:
            first, last = (_number(x, index) for x in span.split("-"))
        else:
            first = last = _number(span, index)
        selected.update(range(first, last + 1, int(step) if step else 1))
    if index == 4 and 7 in selected:
        selected = (selected - {7}) | {0}
    return selected


def reference_fire_times(expression: str, start: datetime, n: int, tz: ZoneInfo | timezone = UTC) -> list[datetime]:
    fields = expression.split()
    minutes, hours, days, months, weekdays = (_reference_set(f, i) for i, f in enumerate(fields))
    day_star, weekday_star = fields[2].startswith("*"), fields[4].startswith("*")
    found: list[datetime] = []
    day: date = start.astimezone(tz).date()
    for _ in range(366 * 30):
        if day.month in months:
            on_day, on_weekday = day.day in days, day.isoweekday() % 7 in weekdays
            if (on_day and on_weekday) if (day_star or weekday_star) else (on_day or on_weekday):
                for hour in sorted(hours):
                    for minute in sorted(minutes):
                        moment = datetime.combine(day, time(hour, minute), tzinfo=tz)
                        if moment >= start:
                            found.append(moment)
                            if len(found) == n:
                                return found
        day += timedelta(days=1)
    return found


# --------------------------------------------------------------------------------------------------------------------
def test_the_table_is_large_enough() -> None:
    assert len(VALID) + len(INVALID) >= 25


@pytest.mark.parametrize("expression", VALID)
def test_valid_expressions_fire_when_crontab_would(expression: str) -> None:
    assert cron.validate_cron(expression) == expression
    trigger = scheduling.parse_cron(expression)
    assert isinstance(trigger, BaseTrigger)
    expected = reference_fire_times(expression, START, 5)
    assert len(expected) == 5, expected
    assert scheduling.next_fire_times(expression, "UTC", START, 5) == expected


@pytest.mark.parametrize(("expression", "message", "stricter"), INVALID, ids=[row[0] for row in INVALID])
def test_invalid_expressions_are_refused_naming_the_field(expression: str, message: str, stricter: str) -> None:
    with pytest.raises(ValueError) as info:
        cron.validate_cron(expression)
    assert message in str(info.value)
    if stricter:
        return
    # APScheduler refuses the same expression, its day-of-week numbers mapped to names (0 or 7 = sun, 1 = mon, ...)
    fields = expression.split()
    if len(fields) == 5:
        days = ["sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        fields[4] = "-".join(days[int(p)] if p.isdigit() and int(p) <= 7 else p for p in fields[4].split("-"))
    with pytest.raises(ValueError):
        CronTrigger.from_crontab(" ".join(fields), timezone="UTC")


def test_apscheduler_alone_reads_day_of_week_numbers_differently() -> None:
    """Why the adapter exists: from_crontab's Monday is 0, so crontab's Monday (1) is its Tuesday."""
    own = CronTrigger.from_crontab("0 10 * * 1", timezone="UTC").get_next_fire_time(None, START)
    assert own.strftime("%A") == "Tuesday"
    assert scheduling.next_fire_times("0 10 * * 1", "UTC", START, 1)[0].strftime("%A") == "Monday"
    with pytest.raises(ValueError):
        CronTrigger.from_crontab("0 10 * * 7", timezone="UTC")


@pytest.mark.parametrize("expression", ["0 10 * * 1", "30 9 1 */3 *", "0 8-18 * * mon-fri"])
def test_fire_times_are_wall_clock_times_in_the_drill_timezone(expression: str) -> None:
    paris = ZoneInfo("Europe/Paris")
    start = datetime(2026, 1, 10, 12, 0, 30, tzinfo=paris)
    times = scheduling.next_fire_times(expression, "Europe/Paris", start, 5)
    # the reference builds wall-clock times in Paris: equal instants mean 10:00 stays 10:00 across DST (+1, +2)
    assert times == reference_fire_times(expression, start, 5, paris)
    assert {t.utcoffset() for t in times} <= {timedelta(hours=1), timedelta(hours=2)}


def test_next_fire_times_needs_an_aware_start() -> None:
    with pytest.raises(ValueError, match="timezone"):
        scheduling.next_fire_times("* * * * *", "UTC", datetime(2026, 1, 1), 1)


@pytest.mark.parametrize(
    ("cron_text", "text"),
    [("0 10 * * 8", "0 or 7 = Sunday"), ("0 0 */2 * mon", "write the days out")],
)
def test_a_drill_schedule_error_names_the_field_and_the_meaning(cron_text: str, text: str, tmp_path: Path) -> None:
    drill = tmp_path / "drill.yaml"
    drill.write_text(hostile.base_text() + f"  schedule:\n    cron: '{cron_text}'\n", encoding="utf-8")
    with pytest.raises(errors.DefinitionErrors) as info:
        loading.load_drill(drill)
    [error] = info.value.errors
    assert error.field == "spec.schedule.cron"
    assert text in error.message
    assert error.line is not None


def test_the_schema_documents_the_day_of_week_meaning() -> None:
    from orchestrator.definitions import models

    description = models.Schedule.model_fields["cron"].description or ""
    assert "0 or 7 = Sunday, 1 = Monday" in description


def test_a_drill_with_a_schedule_loads(tmp_path: Path) -> None:
    drill = tmp_path / "drill.yaml"
    schedule = "  schedule:\n    cron: '30 2 1,15 * sun'\n    timezone: Europe/Paris\n"
    drill.write_text(hostile.base_text() + schedule, encoding="utf-8")
    loaded = loading.load_drill(drill).drill.spec.schedule
    assert loaded is not None
    assert loaded.cron == "30 2 1,15 * sun"
