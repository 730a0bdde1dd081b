"""Charts of the static site as inline SVG: no script, no font or image from anywhere, readable printed.

Every text that goes into a chart is escaped here (``markupsafe.escape``); each function returns ``Markup``
the page templates insert as it is. Colours carry a text twin (a label, a pattern or a ``<title>``), so a
chart printed in black and white still says what it shows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

GREEN = "#2e7d32"
AMBER = "#ef8f00"
RED = "#c62828"
GREY = "#8a8a8a"
BLUE = "#1f5fa8"


def _num(value: float) -> str:
    """A coordinate: two decimals at most, no trailing zeros."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def seconds_text(value: float) -> str:
    """``183.456 s``: the JSON's figure as it is (three decimals at most), in seconds."""
    return f"{value:.3f}".rstrip("0").rstrip(".") + " s"


def _step(span: float, ticks: int = 6) -> float:
    """A round tick step (1, 2 or 5 times a power of ten) giving about ``ticks`` ticks over ``span``."""
    if span <= 0:
        return 1.0
    raw = span / ticks
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= factor * power:
            return float(factor * power)
    return float(10 * power)


@dataclass(frozen=True)
class Bar:
    """One timing of a run: measured (or its lower bound, when censored) and expected, in seconds from t0."""

    name: str
    seconds: float | None
    censored: bool
    lower_bound_s: float | None
    expected_s: float | None
    met: bool | None


@dataclass(frozen=True)
class Mark:
    """One timeline event, in seconds from t0."""

    offset_s: float
    event: str
    actor: str


def timeline_chart(bars: Sequence[Bar], marks: Sequence[Mark], *, width: int = 880) -> Markup:
    """The run's timeline: one bar per timing against its expectation (dashed), and every event as a dot."""
    left, right, row_h, top = 150, 90, 26, 34
    values = [0.0]
    for b in bars:
        values += [v for v in (b.seconds, b.lower_bound_s, b.expected_s) if v is not None]
    values += [m.offset_s for m in marks]
    low, high = min(values), max(values)
    if high - low < 1:
        high = low + 1
    step = _step(high - low)
    low = math.floor(low / step) * step
    high = math.ceil(high / step) * step
    plot = width - left - right

    def x(value: float) -> float:
        return left + (value - low) / (high - low) * plot

    rows = len(bars) + 1
    height = top + rows * row_h + 28
    out = [
        f'<svg class="chart timeline" role="img" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" aria-label="timeline: timings against expectations">',
        "<title>Timeline: each timing against its expectation (dashed), events as dots, seconds from the fault</title>",
    ]
    axis_y = top + rows * row_h
    tick = low
    while tick <= high + step / 2:
        tx = _num(x(tick))
        out.append(f'<line x1="{tx}" y1="{top - 6}" x2="{tx}" y2="{axis_y}" class="grid"/>')
        out.append(f'<text x="{tx}" y="{axis_y + 16}" text-anchor="middle" class="tick">{_num(tick)} s</text>')
        tick += step
    out.append(f'<text x="{left}" y="16" class="axis-label">seconds from the fault going active (t0)</text>')
    for i, b in enumerate(bars):
        y = top + i * row_h
        out.append(f'<text x="{left - 8}" y="{y + 17}" text-anchor="end" class="label">{escape(b.name)}</text>')
        end = b.seconds if b.seconds is not None else (b.lower_bound_s if b.censored else None)
        if end is not None:
            colour = GREY if b.met is None else (GREEN if b.met else RED)
            x0, x1 = x(0.0), x(end)
            text = f"&gt; {escape(seconds_text(end))}" if b.seconds is None else escape(seconds_text(end))
            state = "" if b.met is None else (" met" if b.met else " missed")
            out.append(
                f'<rect x="{_num(x0)}" y="{y + 5}" width="{_num(max(1.0, x1 - x0))}" height="{row_h - 10}" '
                f'fill="{colour}" class="bar{" censored" if b.seconds is None else ""}">'
                f"<title>{escape(b.name)}: {text}{state}</title></rect>"
            )
            if b.seconds is None:  # censored: open-ended, an arrow says "longer than this"
                tip = x1 + 10
                mid = y + row_h / 2
                out.append(
                    f'<path d="M{_num(x1)} {y + 5} L{_num(tip)} {_num(mid)} L{_num(x1)} {y + row_h - 5} Z" '
                    f'fill="{colour}" class="arrow"/>'
                )
            after = max(x(end) + (14 if b.seconds is None else 4), x(b.expected_s) + 5 if b.expected_s else 0.0)
            out.append(f'<text x="{_num(after)}" y="{y + 17}" class="value">{text}</text>')
        else:
            out.append(f'<text x="{_num(x(0.0) + 4)}" y="{y + 17}" class="value">not reached</text>')
        if b.expected_s is not None:
            ex = _num(x(b.expected_s))
            out.append(
                f'<line x1="{ex}" y1="{y + 2}" x2="{ex}" y2="{y + row_h - 2}" class="expected">'
                f"<title>{escape(b.name)} expected within {escape(seconds_text(b.expected_s))}</title></line>"
            )
    y = top + len(bars) * row_h
    out.append(f'<text x="{left - 8}" y="{y + 17}" text-anchor="end" class="label">events</text>')
    for m in marks:
        out.append(
            f'<circle cx="{_num(x(m.offset_s))}" cy="{y + 13}" r="5" class="event">'
            f"<title>{escape(seconds_text(m.offset_s))}: {escape(m.event)} ({escape(m.actor)})</title></circle>"
        )
    out.append("</svg>")
    return Markup("".join(out))


def trend_chart(points: Sequence[tuple[str, float]], quarters: Sequence[str], *, width: int = 260) -> Markup:
    """One person's trend: the quarter's median ratio (timing / the scenario's median), 1.0 dashed."""
    height, pad_l, pad_r, pad_t, pad_b = 70, 30, 10, 8, 18
    top = max([2.0, *(r for _, r in points)])
    top = math.ceil(top * 2) / 2
    slots = max(1, len(quarters) - 1)
    position = {q: i for i, q in enumerate(quarters)}

    def x(q: str) -> float:
        return pad_l + position[q] / slots * (width - pad_l - pad_r)

    def y(r: float) -> float:
        return pad_t + (1 - r / top) * (height - pad_t - pad_b)

    out = [
        f'<svg class="chart trend" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" aria-label="trend per quarter">',
        f'<line x1="{pad_l}" y1="{_num(y(1.0))}" x2="{width - pad_r}" y2="{_num(y(1.0))}" class="expected"/>',
        f'<text x="{pad_l - 4}" y="{_num(y(1.0) + 4)}" text-anchor="end" class="tick">1.0</text>',
        f'<text x="{pad_l - 4}" y="{_num(y(top) + 8)}" text-anchor="end" class="tick">{_num(top)}</text>',
    ]
    for q in (quarters[0], quarters[-1]) if quarters else ():
        anchor = "start" if q == quarters[0] else "end"
        out.append(f'<text x="{_num(x(q))}" y="{height - 4}" text-anchor="{anchor}" class="tick">{escape(q)}</text>')
    known = [(q, r) for q, r in points if q in position]
    if len(known) > 1:
        path = " ".join(f"{'M' if i == 0 else 'L'}{_num(x(q))} {_num(y(r))}" for i, (q, r) in enumerate(known))
        out.append(f'<path d="{path}" class="line"/>')
    for q, r in known:
        out.append(
            f'<circle cx="{_num(x(q))}" cy="{_num(y(r))}" r="3" class="point">'
            f"<title>{escape(q)}: x{r:.2f}</title></circle>"
        )
    out.append("</svg>")
    return Markup("".join(out))


def share_bars(rows: Sequence[tuple[str, float, str]], *, width: int = 620) -> Markup:
    """Horizontal bars of shares (0..1): (label, share, css class); the percentage written beside each bar."""
    left, row_h = 210, 26
    plot = width - left - 70
    height = row_h * len(rows) + 8
    out = [
        f'<svg class="chart shares" role="img" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" aria-label="coverage shares">',
    ]
    for i, (label, share, css) in enumerate(rows):
        y = 4 + i * row_h
        out.append(f'<text x="{left - 8}" y="{y + 16}" text-anchor="end" class="label">{escape(label)}</text>')
        out.append(f'<rect x="{left}" y="{y + 3}" width="{plot}" height="{row_h - 8}" class="track"/>')
        out.append(
            f'<rect x="{left}" y="{y + 3}" width="{_num(plot * max(0.0, min(1.0, share)))}" height="{row_h - 8}" '
            f'class="{escape(css)}"/>'
        )
        out.append(f'<text x="{left + plot + 6}" y="{y + 16}" class="value">{share * 100:.1f}%</text>')
    out.append("</svg>")
    return Markup("".join(out))
