"""drill's phases inside chaoslib's run: called at the right moments, able to stop it, never skipped silently."""

from __future__ import annotations

import copy
import threading
from pathlib import Path
from typing import Any

import pytest

from orchestrator.adapters import ctkrun
from tests.unit.ctk.harness import RecordingPhases, chaos_run, drill_run, experiment


def test_phases_come_after_the_hypothesis_before_and_before_the_hypothesis_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    phases = RecordingPhases()
    outcome, side = drill_run(tmp_path, monkeypatch, "plain", phases=phases)
    assert side.lines == ["ssh", "phase:before_method", "inject", "observe", "phase:after_method", "ssh", "undo"]
    assert outcome.status == "completed" and outcome.method_ran
    assert outcome.phase_calls == ("before_method", "after_method")
    assert phases.method_journal is not None
    assert [r["activity"]["name"] for r in phases.method_journal] == ["inject", "observe", "process-true"]
    # without the phases' lines, it is what chaos run did
    chaos = chaos_run(tmp_path, "plain")
    assert chaos.side is not None
    assert [line for line in side.lines if not line.startswith("phase:")] == chaos.side.lines


def test_phases_come_after_every_other_control_around_the_method(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, side = drill_run(tmp_path, monkeypatch, "controls", phases=RecordingPhases())
    hooks = [line for line in side.lines if line.startswith(("control:", "phase:")) and "activity" not in line]
    assert hooks[4:9] == [
        "control:before_method",
        "phase:before_method",
        "control:after_method runs=2",
        "phase:after_method",
        "control:before_hypothesis",  # the hypothesis after the method
    ]


def test_after_method_waits_for_background_activities(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, side = drill_run(tmp_path, monkeypatch, "background", phases=RecordingPhases())
    assert side.lines.index("bg:end") < side.lines.index("phase:after_method") < side.lines.index("undo")


def test_before_method_interrupting_stops_before_any_fault(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outcome, side = drill_run(tmp_path, monkeypatch, "plain", phases=RecordingPhases(interrupt_at="before_method"))
    assert side.lines == ["ssh", "phase:before_method"]  # no method activity, no rollback
    assert outcome.status == "interrupted"
    assert not outcome.method_ran and outcome.interrupted_by_phase
    assert outcome.phase_calls == ("before_method",)
    assert outcome.journal["run"] == [] and outcome.journal["rollbacks"] == []


def test_a_failing_before_method_stops_the_run_and_is_raised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ctkrun.PhaseError) as raised:
        drill_run(tmp_path, monkeypatch, "controls", phases=RecordingPhases(fail_at="before_method"))
    assert isinstance(raised.value.__cause__, RuntimeError)
    outcome = raised.value.outcome
    assert outcome.status == "interrupted" and not outcome.method_ran
    log = (tmp_path / "drill" / "side-effects.log").read_text(encoding="utf-8").splitlines()
    assert "inject" not in log
    assert log[-2:] == ["control:after_experiment status=interrupted", "control:cleanup"]  # chaoslib finished


def test_after_method_interrupting_skips_the_hypothesis_after_and_default_rollbacks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outcome, side = drill_run(tmp_path, monkeypatch, "plain", phases=RecordingPhases(interrupt_at="after_method"))
    assert side.lines == ["ssh", "phase:before_method", "inject", "observe", "phase:after_method"]
    assert outcome.status == "interrupted" and outcome.method_ran


def test_a_safeguard_refusing_means_before_method_is_never_called(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outcome, side = drill_run(tmp_path, monkeypatch, "safeguard", phases=RecordingPhases())
    assert side.lines == ["safeguard:refused", "phase:on_interrupt"]
    assert outcome.status == "interrupted" and not outcome.method_ran
    assert outcome.phase_calls == ("on_interrupt",)


def test_a_global_safeguard_means_before_method_is_never_called(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = {"controls": {"safeguard": {"provider": {"type": "python", "module": "tests.unit.ctk.refuse"}}}}
    outcome, side = drill_run(tmp_path, monkeypatch, "plain", phases=RecordingPhases(), settings=settings)
    assert side.lines == ["safeguard:refused", "phase:on_interrupt"]
    assert not outcome.method_ran


def test_an_activity_interrupting_the_method_calls_on_interrupt_instead_of_after_method(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outcome, side = drill_run(tmp_path, monkeypatch, "activity-interrupt", phases=RecordingPhases())
    assert side.lines == ["ssh", "phase:before_method", "first", "phase:on_interrupt"]
    assert outcome.phase_calls == ("before_method", "on_interrupt")
    assert outcome.status == "interrupted" and outcome.method_ran and not outcome.interrupted_by_phase


def test_no_phase_when_the_steady_state_does_not_hold_before(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CTK_TEST_LOG", str(tmp_path / "pre.log"))
    (tmp_path / "pre.log.broken").write_text("broken", encoding="utf-8")  # the probe reads the log path + .broken
    phases = RecordingPhases()
    outcome = ctkrun.run_experiment_with_phases(experiment("plain"), phases=phases)
    assert outcome.status == "completed" and outcome.phase_calls == () and not outcome.method_ran
    assert outcome.journal["steady_states"]["before"]["steady_state_met"] is False


def test_runs_in_a_worker_thread_and_leaves_the_experiment_and_chaoslib_state_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chaoslib import control as chaos_control

    given = experiment("controls")
    before = copy.deepcopy(given)
    monkeypatch.setenv("CTK_TEST_LOG", str(tmp_path / "log"))
    box: dict[str, Any] = {}

    def work() -> None:
        box["outcome"] = ctkrun.run_experiment_with_phases(given, phases=ctkrun.NoPhases())

    worker = threading.Thread(target=work)
    worker.start()
    worker.join(timeout=60)
    assert box["outcome"].status == "completed"
    assert given == before
    assert chaos_control.get_global_controls() == []
    # and a second run in the same process behaves the same
    again = ctkrun.run_experiment_with_phases(given, phases=ctkrun.NoPhases())
    assert again.status == "completed"
    assert [r["activity"]["name"] for r in again.journal["run"]] == ["inject", "observe"]


def test_journal_json_serialises_what_chaos_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outcome, _ = drill_run(tmp_path, monkeypatch, "plain", dry="probes")
    text = ctkrun.journal_json(outcome)
    assert '"dry": "probes"' in text  # the --dry value, as chaos run writes it, not chaoslib's enum
    assert ctkrun.CONTROL_NAME not in text


def test_load_experiment_file_is_chaos_runs_loader(tmp_path: Path) -> None:
    from orchestrator import errors
    from tests.unit.ctk.harness import DATA

    assert ctkrun.load_experiment_file(DATA / "plain.json") == experiment("plain")
    with pytest.raises(errors.ExperimentError, match="cannot load experiment"):
        ctkrun.load_experiment_file(tmp_path / "missing.json")
