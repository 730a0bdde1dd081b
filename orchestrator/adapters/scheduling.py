"""APScheduler 3.x behind drill's cron meaning: the standard crontab one, translated field by field.

A drill's ``schedule.cron`` means what it means in a crontab: five fields (minute, hour, day of month, month,
day of week), day-of-week 0 or 7 = Sunday, 1 = Monday ... 6 = Saturday, names ``sun`` .. ``sat`` and
``jan`` .. ``dec``. APScheduler 3.x's ``CronTrigger.from_crontab`` disagrees on the day of week (Monday = 0,
so ``0 10 * * 1`` would run on Tuesdays there, and ``7`` is refused), so drill never hands it the text:
each field is parsed here with crontab's grammar, expanded to the values it selects, and given to
``CronTrigger`` as explicit values (days of week as names, which both sides read the same way).

When both day of month and day of week are restricted (``30 2 1,15 * 0``), crontab runs on days matching
*either*, APScheduler's ``CronTrigger`` on days matching *both*: drill then builds one trigger per day field
and fires on the earlier (``OrTrigger``), as crontab does. Two things crontab implementations allow are
refused, because the drill would run when nobody expects it:

- one day field a step over ``*`` (``*/2``) and the other restricted: Vixie cron and cronie then require
  both days to match, POSIX either; write the days out (``1-31/2``) or set the other field to ``*``.
- a day that never comes (``0 0 31 2 *``): the drill would never run, and APScheduler would search the
  calendar until the year 9999 to find that out.

This is the only module that imports APScheduler; ``definitions/cron.py`` imports it only when a drill has
a schedule, so ``drill --help`` and most ``drill validate`` runs never load it.
"""

from __future__ import annotations

import calendar
import re
import zoneinfo
from dataclasses import dataclass
from datetime import datetime

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger

DAY_OF_WEEK_MEANING = "0-7, where 0 or 7 = Sunday, 1 = Monday ... 6 = Saturday; or sun, mon ... sat"
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
#: APScheduler's weekday order (Monday = 0) by name.
_APS_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPECIALS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_ITEM = re.compile(r"^(?P<base>\*|[0-9a-z]+(?:-[0-9a-z]+)?)(?:/(?P<step>[0-9]+))?$")


class CronError(ValueError):
    """A cron expression drill does not accept; the message names the field and says why."""


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    names_start: int = 0
    meaning: str = ""

    def describe(self) -> str:
        return self.meaning or f"{self.low}-{self.high}"


_FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day of month", 1, 31),
    _Field("month", 1, 12, _MONTHS, 1, "1-12, or jan ... dec"),
    _Field("day of week", 0, 7, _DAYS, 0, DAY_OF_WEEK_MEANING),
)


@dataclass(frozen=True)
class CronFields:
    """A valid expression, each field expanded to the values it selects (day of week: 0 = Sunday ... 6)."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    #: Both day fields restricted: a day matches when either does (crontab), not both (CronTrigger).
    either_day: bool = False

    def trigger_fields(self) -> dict[str, str]:
        """The ``CronTrigger`` keyword arguments selecting exactly these values."""
        weekdays = frozenset((day + 6) % 7 for day in self.weekdays)  # Sunday = 0 -> APScheduler's 6
        return {
            "minute": _compact(self.minutes, 0, 59),
            "hour": _compact(self.hours, 0, 23),
            "day": _compact(self.days, 1, 31),
            "month": _compact(self.months, 1, 12),
            "day_of_week": _compact(weekdays, 0, 6, names=_APS_DAYS),
        }


def _compact(values: frozenset[int], low: int, high: int, *, names: tuple[str, ...] = ()) -> str:
    """``*`` for every value, else runs as ``a-b`` and single values, comma-separated."""
    if len(values) == high - low + 1:
        return "*"
    show = (lambda v: names[v]) if names else str
    ordered = sorted(values)
    parts: list[str] = []
    start = previous = ordered[0]
    for value in [*ordered[1:], None]:
        if value is not None and value == previous + 1:
            previous = value
            continue
        parts.append(show(start) if start == previous else f"{show(start)}-{show(previous)}")
        if value is not None:
            start = previous = value
    return ",".join(parts)


def _value(text: str, field: _Field) -> int:
    if text in field.names:
        return field.names.index(text) + field.names_start
    if not text.isdigit():
        raise CronError(f"{field.name} field: {text!r} is not a number ({field.describe()})")
    value = int(text)
    if not field.low <= value <= field.high:
        raise CronError(f"{field.name} field: {value} is outside {field.describe()}")
    return value


def _expand(text: str, field: _Field) -> frozenset[int]:
    values: set[int] = set()
    for item in text.lower().split(","):
        match = _ITEM.match(item)
        if not match:
            raise CronError(
                f"{field.name} field: {item!r} is not a value, a range (a-b), * or a step (*/n, a-b/n); "
                f"values: {field.describe()}"
            )
        base, step_text = match["base"], match["step"]
        if base == "*":
            first, last = field.low, field.high
        else:
            start, dash, end = base.partition("-")
            first = _value(start, field)
            last = _value(end, field) if dash else first
            if last < first:
                raise CronError(
                    f"{field.name} field: the range {base!r} runs backwards ({field.describe()}); "
                    "write it as a list, e.g. 5,6,0 or fri,sat,sun"
                    if field.name == "day of week"
                    else f"{field.name} field: the range {base!r} runs backwards; write it low-high"
                )
        step = 1
        if step_text is not None:
            step = int(step_text)
            if base != "*" and not dash:
                raise CronError(
                    f"{field.name} field: a step needs * or a range, e.g. */{step} or {base}-{field.high}/{step}"
                )
            if step == 0 or step > max(1, last - first):
                raise CronError(
                    f"{field.name} field: the step {step} must be between 1 and {max(1, last - first)} "
                    f"(the span of {base!r})"
                )
        values.update(range(first, last + 1, step))
    if field.name == "day of week" and 7 in values:  # 7 is Sunday again
        values.discard(7)
        values.add(0)
    return frozenset(values)


def parse_fields(expression: str) -> CronFields:
    """Check ``expression`` with crontab's meaning and expand it; raise CronError naming the field and why."""
    text = expression.strip()
    if text.lower() in _SPECIALS:
        raise CronError(f"write {text!r} as its five fields: {_SPECIALS[text.lower()]!r}")
    parts = text.split()
    if len(parts) != 5:
        raise CronError(
            f"a cron expression has 5 fields (minute hour day-of-month month day-of-week), "
            f"got {len(parts)}: e.g. '0 10 1 */3 *' is 10:00 on the first day of every quarter"
        )
    minutes, hours, days, months, weekdays = (_expand(part, field) for part, field in zip(parts, _FIELDS, strict=True))
    day, weekday = parts[2], parts[4]
    if "*" not in (day, weekday) and (day.startswith("*") or weekday.startswith("*")):
        raise CronError(
            f"day of month field {day!r} and day of week field {weekday!r}: with a step over * in one and the "
            "other set, some crons run on days matching both and others on days matching either; write the "
            "days out (e.g. 1-31/2) or set the other field to *"
        )
    either_day = day != "*" and weekday != "*"
    if weekday == "*" and not _some_day_comes(days, months):
        raise CronError(f"day of month field: no month in {parts[3]!r} has a day {day!r}, so the drill would never run")
    return CronFields(minutes, hours, days, months, weekdays, either_day)


def _some_day_comes(days: frozenset[int], months: frozenset[int]) -> bool:
    return any(day <= _longest(month) for month in months for day in days)


def _longest(month: int) -> int:
    return 29 if month == 2 else calendar.monthrange(2001, month)[1]


def _zone(timezone: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise CronError(f"unknown timezone {timezone!r}; use an IANA name such as Europe/Paris or UTC") from exc


def parse_cron(expression: str, timezone: str = "UTC") -> BaseTrigger:
    """The APScheduler trigger for ``expression`` read as a crontab line (day of week: 0 or 7 = Sunday).

    A ``CronTrigger``, or an ``OrTrigger`` of two when both day fields are restricted (see the module doc).
    """
    fields = parse_fields(expression)
    zone = _zone(timezone)
    values = fields.trigger_fields()
    try:
        if not fields.either_day:
            return CronTrigger(**values, timezone=zone)
        on_weekday = CronTrigger(**{**values, "day": "*"}, timezone=zone)
        if not _some_day_comes(fields.days, fields.months):  # Feb 31 or Mondays: only the Mondays ever come
            return on_weekday
        return OrTrigger([CronTrigger(**{**values, "day_of_week": "*"}, timezone=zone), on_weekday])
    except ValueError as exc:  # not expected: every value was checked above
        raise CronError(f"APScheduler refused {expression!r} ({values}): {exc}") from exc


def next_fire_times(expression: str, timezone: str, start: datetime, n: int) -> list[datetime]:
    """The first ``n`` times at or after ``start`` (timezone-aware) when ``expression`` fires, in ``timezone``."""
    if start.tzinfo is None:
        raise ValueError("start needs a timezone, e.g. datetime(2026, 1, 1, tzinfo=timezone.utc)")
    trigger = parse_cron(expression, timezone)
    times: list[datetime] = []
    previous: datetime | None = None
    now = start
    while len(times) < n:
        fire = trigger.get_next_fire_time(previous, now)
        if fire is None:
            break
        times.append(fire)
        previous = now = fire
    return times
