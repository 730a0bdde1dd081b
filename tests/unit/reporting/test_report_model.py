"""The report is a typed, versioned document that never depends on today's drill schema.

An archived run whose stored definition was written by another drill version (a field renamed,
a field removed, a new required one missing) still gets its report built and rendered; report
files of version 1 still load; a report from a newer drill is refused with the fix.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator import errors, records
from orchestrator.journal import store
from orchestrator.reporting import model, reports

OLD_DEFINITION = {
    "apiVersion": "drill.dev/v0alpha9",  # an older schema this drill no longer accepts
    "kind": "Drill",
    "metadata": {"name": "legacy-drill", "description": "written by an older drill", "team": "sre"},
    "spec": {
        "mode": "no-automation",
        "target": {"kind": "sandbox", "socket": "/old/path"},  # a field that no longer exists
        "participants": [{"name": "alice", "role": "responder"}, {"nick": "no name"}],
        "expectations": {"acknowledge": "2m", "resolve": 900, "retired": "soon"},
        "failureMode": "sandbox/service-down",
    },
}


def _archived_run(tmp_path: Path) -> tuple[store.SqlJournal, str]:
    journal = store.open_journal(tmp_path / "journal.db")
    run_id = "legacy-drill-20250101-000000-abcd"
    journal.create_run(
        records.RunRecord(
            run_id=run_id,
            drill_name="legacy-drill",
            drill_path="/old/drill.yaml",
            mode=records.RunMode.NO_AUTOMATION,
            target_key="sandbox:/old",
            state=records.RunState.DONE,
            created_at=1_735_689_600.0,
            updated_at=1_735_689_700.0,
            pid=1,
            host="old-host",
            deadline_at=1_735_690_000.0,
            definition=OLD_DEFINITION,
            experiment={},
        )
    )
    for at, kind in (
        (10.0, records.TimelineKind.FAULT_ACTIVE),
        (10.0, records.TimelineKind.NOTIFIED),
        (40.0, records.TimelineKind.ACKNOWLEDGED),
    ):
        journal.append(records.timeline(run_id, 1_735_689_600.0 + at, kind, actor="alice"))
    return journal, run_id


def test_a_run_stored_under_an_older_definition_schema_still_renders(tmp_path: Path) -> None:
    journal, run_id = _archived_run(tmp_path)
    report = reports.build(journal, run_id, now=1_735_700_000.0)
    assert isinstance(report, model.RunReport)
    assert report.schema_version == model.SCHEMA_VERSION
    assert report.description == "written by an older drill"
    assert [p.name for p in report.participants] == ["alice"]
    ack = next(t for t in report.timings if t.name == "acknowledge")
    assert ack.seconds == 30.0 and ack.expected_s == 120.0 and ack.met is True
    markdown = reports.render_markdown(report)
    assert "legacy" in markdown and "acknowledge" in markdown
    folder = reports.write_run_report(journal, run_id, tmp_path / "archive", now=1_735_700_000.0)
    assert model.load(folder / "report.json") == report
    journal.close()


def test_version_1_reports_load_and_unknown_versions_are_refused(tmp_path: Path) -> None:
    journal, run_id = _archived_run(tmp_path)
    document = json.loads(reports.build(journal, run_id, now=1.0).to_json())
    journal.close()
    old = tmp_path / "v1.json"
    old.write_text(json.dumps({**document, "schema_version": 1}), encoding="utf-8")
    assert model.load(old).run_id == run_id
    newer = tmp_path / "v99.json"
    newer.write_text(json.dumps({**document, "schema_version": 99}), encoding="utf-8")
    with pytest.raises(errors.ReportError, match="upgrade drill"):
        model.load(newer)
    damaged = tmp_path / "damaged.json"
    damaged.write_text('{"schema_version": 2, "run_id": ', encoding="utf-8")
    with pytest.raises(errors.ReportError, match="cannot read"):
        model.load(damaged)
