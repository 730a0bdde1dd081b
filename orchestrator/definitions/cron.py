"""A drill's ``schedule.cron``: five fields with the standard crontab meaning, checked by the scheduler adapter.

The meaning is crontab's: minute, hour, day of month, month, day of week, where day-of-week 0 or 7 is
Sunday, 1 is Monday ... 6 is Saturday (names ``sun`` .. ``sat``). ``adapters/scheduling.py`` translates
that to APScheduler (whose own crontab reading starts the week on Monday = 0) and is imported only here,
inside the function, so loading a drill without a schedule never imports the scheduler.
"""

from __future__ import annotations


def validate_cron(expression: str) -> str:
    """Return the expression if valid; raise ValueError saying which field is wrong and why."""
    from orchestrator.adapters import scheduling

    scheduling.parse_cron(expression)
    return expression
