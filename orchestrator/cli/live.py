"""What ``drill run`` shows while it runs: a live view on a terminal, plain lines otherwise.

Every line is cleaned (``redaction.clean``) before it is shown: notes and errors are typed by people
and may hold a pasted token or terminal escape codes. The live view also hands rich plain ``Text``,
never markup, so ``[link=...]`` in a note is shown, not interpreted.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from orchestrator import durations, records, redaction
from orchestrator.reporting import reports


def _line(event: records.Event) -> str | None:
    line = _raw_line(event)
    return None if line is None else redaction.clean_line(line)


def _raw_line(event: records.Event) -> str | None:
    if event.kind is records.EventKind.TIMELINE:
        detail = reports.describe(event)
        return f"{event.name:<22} {event.actor:<22} {detail}".rstrip()
    if event.kind is records.EventKind.ACTION and event.name in (
        "suspend",
        "inject",
        "rollback",
        "restore",
        "guardrail",
    ):
        return f"{event.name:<22} {'drill':<22} {event.actual}".rstrip()
    if event.kind is records.EventKind.ACTION and event.name == "preflight.check":
        return f"{'preflight':<22} {'drill':<22} {event.expected}: {event.actual}"
    return None


class PlainView:
    """One line per state change and per human-facing event; for logs, CI and pipes."""

    def __init__(self) -> None:
        self.start: float | None = None
        self.t0: float | None = None

    def _stamp(self, at: float) -> str:
        if self.start is None:
            self.start = at
        return f"[+{at - self.start:7.2f}s]"

    def on_state(self, state: records.RunState, at: float) -> None:
        print(f"{self._stamp(at)} state: {state.value}", flush=True)

    def on_event(self, event: records.Event) -> None:
        if event.name == records.TimelineKind.FAULT_ACTIVE.value:
            self.t0 = event.at
        line = _line(event)
        if line is not None:
            print(f"{self._stamp(event.at)} {line}", flush=True)

    def close(self) -> None:
        return None


class LiveView:
    """A rich live panel: state, timers since start and since the fault, the timeline so far."""

    def __init__(self, drill: str) -> None:
        from rich.console import Console
        from rich.live import Live

        self.drill = drill
        self.state = records.RunState.PLANNED
        self.start: float | None = None
        self.t0: float | None = None
        self.lines: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._live = Live(self, console=Console(stderr=False), refresh_per_second=4, transient=False)
        self._live.start()

    def on_state(self, state: records.RunState, at: float) -> None:
        with self._lock:
            self.state = state
            if self.start is None:
                self.start = at

    def on_event(self, event: records.Event) -> None:
        with self._lock:
            if event.name == records.TimelineKind.FAULT_ACTIVE.value:
                self.t0 = event.at
            line = _line(event)
            if line is not None:
                self.lines.append((event.at, line))

    def __rich__(self) -> Any:
        import time

        from rich.panel import Panel
        from rich.table import Table
        from rich.text import Text

        with self._lock:
            now = time.time()
            table = Table.grid(padding=(0, 2))
            table.add_row("state", f"[bold]{self.state.value}[/bold]")
            table.add_row("elapsed", durations.format_duration(now - self.start if self.start else 0.0))
            if self.t0 is not None:
                table.add_row("since fault", durations.format_duration(now - self.t0))
            timeline = Table(show_header=True, header_style="bold", box=None)
            timeline.add_column("at", justify="right")
            timeline.add_column("event")
            base = self.t0 or self.start or now
            for at, line in self.lines[-14:]:
                timeline.add_row(f"{at - base:+.1f}s", Text(line))
            outer = Table.grid()
            outer.add_row(table)
            outer.add_row(timeline)
            return Panel(outer, title=Text(f"drill {redaction.clean_line(self.drill)}"))

    def close(self) -> None:
        self._live.stop()


def make_view(drill: str, *, plain: bool) -> PlainView | LiveView:
    if plain or not sys.stdout.isatty():
        return PlainView()
    return LiveView(drill)
