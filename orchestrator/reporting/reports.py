"""The per-run report: JSON (canonical) and Markdown, written into the archive as ``<archive>/<run-id>/``.

The report is computed from the journal only (run record, events, suspensions), never from
the engine's memory, so ``drill restore`` after a crash can write the same report.

Everything in it is cleaned (``redaction.clean_value``) once more on the way out, whatever the
journal holds: a report is read by people, pasted into tickets and rendered by Markdown viewers.
The Markdown escapes what is left (``md``, ``cell`` and ``code`` filters): a note cannot end a
table cell with ``|``, start a new line, open an HTML tag or a link, or undo a code span.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from orchestrator import durations, records, redaction, timings
from orchestrator.clock import iso
from orchestrator.journal import base as journal_base
from orchestrator.reporting import model


def build(journal: journal_base.JournalStore, run_id: str, *, now: float) -> model.RunReport:
    """The canonical report document of one run (its definition read leniently, see ``model.DefinitionView``)."""
    run = journal.get_run(run_id)
    view = model.DefinitionView(run.definition)
    events = journal.events(run_id)
    timeline = sorted((e for e in events if e.kind is records.EventKind.TIMELINE), key=lambda e: e.at)
    transitions = [e for e in events if e.kind is records.EventKind.TRANSITION]
    ended_at = next((e.at for e in transitions if e.name in ("restoring", "aborting")), None)
    expectations = view.expectations
    computed = timings.compute(timeline, mode=run.mode, ended_at=ended_at, expectations=expectations)
    abort = next((e for e in timeline if e.name == records.TimelineKind.ABORTED.value), None)
    suspensions = journal.suspensions(run_id)
    policy_events = {
        (e.data.get("policy"), e.name): e for e in events if e.kind is records.EventKind.ACTION and "policy" in e.data
    }
    policies = []
    for s in suspensions:
        suspended = policy_events.get((s.policy, "suspend"))
        restored = policy_events.get((s.policy, "restore"))
        policies.append(
            {
                "name": s.policy,
                "kind": s.kind,
                "prior": s.prior,
                "suspended_at": iso(suspended.at) if suspended else None,
                "suspension_verified": bool(suspended and suspended.data.get("verified")),
                "restored_at": iso(restored.at) if restored else None,
                "restore_verified": s.state is records.SuspensionState.RESTORED,
                "state": s.state.value,
                "detail": s.detail,
            }
        )
    hints = [e for e in timeline if e.name == records.TimelineKind.HINT.value]
    document: dict[str, Any] = {
        "schema_version": model.SCHEMA_VERSION,
        "run_id": run.run_id,
        "drill": run.drill_name,
        "drill_path": run.drill_path,
        "description": view.description,
        "mode": run.mode,
        "failure_mode": view.failure_mode,
        "target": run.target_key,
        "state": run.state.value,
        "outcome": run.outcome.value if run.outcome else None,
        "abort_reason": abort.data.get("reason") if abort else None,
        "started_at": iso(run.created_at),
        "ended_at": iso(transitions[-1].at) if transitions else None,
        "generated_at": iso(now),
        "participants": [p.model_dump() for p in view.participants],
        "timings": [
            {
                "name": t.name,
                "seconds": None if t.seconds is None else round(t.seconds, 3),
                "censored": t.censored,
                "lower_bound_s": None if t.lower_bound_s is None else round(t.lower_bound_s, 3),
                "expected_s": t.expected_s,
                "met": t.met,
            }
            for t in computed
        ],
        "hints_used": len(hints),
        "responders": _per_responder(timeline, [p.name for p in view.participants]),
        "policies": policies,
        "timeline": [{"at": iso(e.at), "event": e.name, "actor": e.actor, "detail": describe(e)} for e in timeline],
        "notes": [
            {"at": iso(e.at), "actor": e.actor, "text": e.data.get("text", "")}
            for e in timeline
            if e.name == records.TimelineKind.NOTE.value
        ],
    }
    cleaned: dict[str, Any] = redaction.clean_value(document)
    return model.RunReport.model_validate(cleaned)


def _per_responder(timeline: list[records.Event], names: list[str]) -> list[dict[str, Any]]:
    """Each participant's own first acknowledge / diagnose / mitigated / resolve, in seconds from t0."""
    t0 = timings.first(timeline, records.TimelineKind.FAULT_ACTIVE)
    if t0 is None:
        return []
    kinds = {"acknowledged": "acknowledge", "diagnosed": "diagnose", "mitigated": "mitigated", "resolved": "resolve"}
    rows = []
    for name in names:
        mine = [e for e in timeline if e.actor.removesuffix(" (simulated)") == name]
        row: dict[str, Any] = {"name": name}
        for event_name, label in kinds.items():
            event = next((e for e in mine if e.name == event_name), None)
            row[f"{label}_s"] = None if event is None else round(event.at - t0.at, 3)
        row["hints"] = sum(1 for e in mine if e.name == records.TimelineKind.HINT.value)
        if any(row[f"{label}_s"] is not None for label in kinds.values()) or row["hints"]:
            rows.append(row)
    return rows


def describe(event: records.Event) -> str:
    """One line of detail for a timeline event."""
    data = event.data
    for key in ("text", "reason", "detail", "method"):
        if data.get(key):
            return str(data[key])
    if "restored" in data:
        restored = ", ".join(data["restored"]) or "nothing"
        failed = ", ".join(data.get("failed") or [])
        return f"restored: {restored}" + (f"; FAILED: {failed}" if failed else "")
    if "participants" in data:
        return f"{data.get('channel', '?')}: {', '.join(data['participants'])}"
    if "hold_window_s" in data:
        return f"steady state held for {data['hold_window_s']:g}s from this moment"
    return ""


_MARKDOWN_SPECIAL = str.maketrans({c: "\\" + c for c in "\\<>&[]"})


_BLOCK_MARKER = re.compile(r"^(\s*+(?:\d{1,9}+(?=[.)])|(?=[#+*=>-])))(.)")


def _md(value: object) -> str:
    """Inline Markdown text: cleaned, on one line (``<br>``), with no HTML, entity or link left to act.

    A leading ``#``, ``-``, ``1.`` ... is escaped too (``1\\.``): a description cannot become a heading or a list.
    """
    text = redaction.clean(str(value)).translate(_MARKDOWN_SPECIAL).replace("\r", "").replace("\n", "<br>")
    return _BLOCK_MARKER.sub(lambda m: m.group(1) + "\\" + m.group(2), text)


def _cell(value: object) -> str:
    """A Markdown table cell: inline text whose ``|`` does not end the cell."""
    return _md(value).replace("|", "\\|")


def _code(value: object) -> str:
    """Text inside a code span in a table: no backtick can close the span, no ``|`` end the cell."""
    return redaction.clean_line(str(value)).replace("`", "'").replace("|", "\\|")


def _duration(value: float | None) -> str:
    return str(durations.format_duration(value))


def _json(value: object) -> str:
    """JSON with sorted keys and no ``<``, ``>``, ``&`` or ``'`` left as such (what Jinja2's ``tojson`` wrote)."""
    text = json.dumps(value, sort_keys=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").replace("'", "\\u0027")


def _timing_cells(t: model.TimingRow) -> str:
    if t.seconds is not None:
        measured = _duration(t.seconds)
    elif t.censored:
        measured = f"> {_duration(t.lower_bound_s)} (censored)"
    else:
        measured = "-"
    met = "-" if t.met is None else "yes" if t.met else "no"
    return f"| {_cell(t.name)} | {measured} | {_duration(t.expected_s)} | {met} |\n"


_RESPONDER_TIMINGS = ("acknowledge", "diagnose", "mitigated", "resolve")


def render_markdown(report: model.RunReport) -> str:
    """The report as Markdown, every value through ``md``, ``cell`` or ``code``.

    Plain Python rather than a template: the run path then pays neither Jinja2's import nor its
    compilation of the template (~0.1 s of a trivial ``drill run``).
    """
    r = report
    abort = f" ({_cell(r.abort_reason)})" if r.abort_reason else ""
    out = [
        f"# Drill report: {_md(r.drill)}\n\n| | |\n|---|---|\n",
        f"| Run | `{_code(r.run_id)}` |\n",
        f"| Mode | {_cell(r.mode)} |\n",
        f"| Outcome | **{_cell(r.outcome or r.state)}**{abort} |\n",
        f"| Target | `{_code(r.target)}` |\n",
        f"| Started | {r.started_at!s} |\n",
        f"| Ended | {r.ended_at!s} |\n",
        f"| Hints used | {r.hints_used!s} |\n",
    ]
    if r.description:
        out.append(f"\n{_md(r.description)}\n")
    out.append("\n## Timings\n\n| Timing | Measured | Expected | Met |\n|---|---|---|---|\n")
    out.extend(_timing_cells(t) for t in r.timings)
    out.append("\n")
    if r.responders:
        out.append("## Per responder (seconds from the fault)\n\n")
        out.append("| Responder | Acknowledged | Diagnosed | Declared mitigated | Resolved | Hints |\n")
        out.append("|---|---|---|---|---|---|\n")
        for p in r.responders:  # the timing columns are the row's extra fields (``<timing>_s``)
            measured = " | ".join(_duration(getattr(p, f"{name}_s")) for name in _RESPONDER_TIMINGS)
            out.append(f"| {_cell(p.name)} | {measured} | {p.hints!s} |\n")
        out.append("\n")
    out.append("## Automation suspended and restored\n\n")
    if r.policies:
        out.append("| Policy | Kind | Before | Suspended | Restored | Verified |\n|---|---|---|---|---|---|\n")
        out.extend(
            f"| {_cell(p.name)} | {_cell(p.kind)} | `{_code(_json(p.prior))}` | {p.suspended_at or '-'!s} |"
            f" {p.restored_at or '-'!s} | {'yes' if p.restore_verified else f'**NO: {_cell(p.detail)}**'} |\n"
            for p in r.policies
        )
    else:
        out.append(f"No automation was suspended ({_md(r.mode)} drill).\n")
    out.append("\n## Participants\n\n")
    out.extend(f"- {_md(p.name)} ({_md(p.role)})\n" for p in r.participants)
    if not r.participants:
        out.append("- none\n")
    out.append("\n## Timeline\n\n| At | Event | Actor | Detail |\n|---|---|---|---|\n")
    out.extend(f"| {_cell(e.at)} | {_cell(e.event)} | {_cell(e.actor)} | {_cell(e.detail)} |\n" for e in r.timeline)
    if r.notes:
        out.append("\n## Notes\n\n")
        out.extend(f"- {_md(n.at)} {_md(n.actor)}: {_md(n.text)}\n" for n in r.notes)
    return "".join(out)


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


def folder_for(archive: Path, run_id: str) -> Path:
    """Where a run's report goes, known before it is written (so the journal can point at it first)."""
    return archive / run_id


def write_run_report(journal: journal_base.JournalStore, run_id: str, archive: Path, *, now: float) -> Path:
    """Write report.json, report.md and journal.jsonl into ``archive/run_id``; returns that folder."""
    folder = folder_for(archive, run_id)
    folder.mkdir(parents=True, exist_ok=True)
    report = build(journal, run_id, now=now)
    _atomic_write(folder / "report.json", report.to_json())
    _atomic_write(folder / "report.md", render_markdown(report))
    journal.export_jsonl(run_id, folder / "journal.jsonl")
    return folder
