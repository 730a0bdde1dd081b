"""A five-field cron expression validator, so ``drill validate`` needs no scheduler import."""

from __future__ import annotations

_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
)
_NAMES = {
    3: {
        m: i + 1
        for i, m in enumerate(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"])
    },
    4: {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])},
}


def _value(text: str, index: int, low: int, high: int, name: str) -> int:
    lowered = text.lower()
    names = _NAMES.get(index, {})
    if lowered in names:
        return names[lowered]
    if not text.isdigit():
        raise ValueError(f"{name} field: {text!r} is not a number")
    value = int(text)
    if not low <= value <= high:
        raise ValueError(f"{name} field: {value} is outside {low}-{high}")
    return value


def validate_cron(expression: str) -> str:
    """Return the expression if valid; raise ValueError saying which field is wrong and why."""
    parts = expression.split()
    if len(parts) != 5:
        raise ValueError(
            f"a cron expression has 5 fields (minute hour day-of-month month day-of-week), "
            f"got {len(parts)}: e.g. '0 10 1 */3 *' is 10:00 on the first day of every quarter"
        )
    for index, (part, (name, low, high)) in enumerate(zip(parts, _FIELDS, strict=True)):
        for item in part.split(","):
            base, _, step = item.partition("/")
            if step and (not step.isdigit() or int(step) == 0):
                raise ValueError(f"{name} field: step {step!r} must be a positive number")
            if base == "*":
                continue
            start, dash, end = base.partition("-")
            first = _value(start, index, low, high, name)
            if dash:
                last = _value(end, index, low, high, name)
                if last < first:
                    raise ValueError(f"{name} field: range {base!r} runs backwards")
    return expression
