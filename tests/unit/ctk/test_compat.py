"""Compatibility: each experiment-format feature, run by ``chaos run`` and by ``ctkrun`` with no-op phases, agrees.

Compared: status, deviated, the method's and the rollbacks' activities (names and statuses, in order),
whether the steady state held before/after (and how many checks during), and the side effects in order.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator import errors
from orchestrator.adapters import ctkrun
from tests.unit.ctk.harness import chaos_run, drill_run, experiment, stamped

HAS_JSONPATH = importlib.util.find_spec("jsonpath2") is not None


def agree(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    *,
    args: tuple[str, ...] = (),
    settings: dict[str, Any] | None = None,
    ordered: bool = True,
    **kwargs: Any,
) -> dict[str, Any]:
    chaos = chaos_run(tmp_path, name, args=args, settings=settings)
    assert chaos.side is not None, chaos.stderr
    outcome, drill = drill_run(tmp_path, monkeypatch, name, settings=settings, **kwargs)
    expected = chaos.side.summary(ordered=ordered)
    assert drill.summary(ordered=ordered) == expected
    assert (outcome.status, outcome.deviated) == (expected["status"], expected["deviated"])
    assert outcome.exit_code == chaos.returncode
    return expected


def test_plain_probes_and_actions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = agree(tmp_path, monkeypatch, "plain")
    assert seen["status"] == "completed"
    assert seen["lines"] == ["ssh", "inject", "observe", "ssh", "undo"]
    assert [n for n, _ in seen["run"]] == ["inject", "observe", "process-true"]


def test_background_activities_run_concurrently(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = agree(tmp_path, monkeypatch, "background", ordered=False)
    assert seen["status"] == "completed"
    for log in (tmp_path / "chaos" / "side-effects.log", tmp_path / "drill" / "side-effects.log"):
        at = stamped(log)
        assert at["fg:start"] < at["bg:end"] and at["bg:start"] < at["fg:end"], at  # they overlapped
        order = [line.split(" ")[0] for line in log.read_text(encoding="utf-8").splitlines()]
        assert order.index("after") < order.index("bg:end") < order.index("undo")  # waited for before the rollbacks


def test_ref_in_method_and_rollbacks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = agree(tmp_path, monkeypatch, "ref")
    assert seen["lines"] == ["ssh", "inject", "reset", "observe", "inject", "observe", "ssh", "undo", "reset"]


def test_ref_to_a_rollback_is_chaoslibs_crash_and_an_experiment_error_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chaos = chaos_run(tmp_path, "ref-to-rollback")
    assert chaos.returncode == 1 and chaos.side is None  # a traceback, no journal
    assert "could not find referenced activity 'undo'" in chaos.stderr
    with pytest.raises(errors.ExperimentError, match="could not find referenced activity 'undo'") as raised:
        drill_run(tmp_path, monkeypatch, "ref-to-rollback")
    assert raised.value.__cause__ is not None


def test_a_failing_method_action_is_recorded_and_the_run_carries_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = agree(tmp_path, monkeypatch, "failing-action")
    assert seen["status"] == "completed"
    assert seen["run"] == [
        ("first", "succeeded"),
        ("boom", "failed"),
        ("process-false", "succeeded"),  # chaoslib records a process' exit status as output, not as a failure
        ("last", "succeeded"),
    ]
    assert seen["rollbacks"] == [("undo", "succeeded")]


@pytest.mark.parametrize(
    ("strategy", "lines", "during"),
    [
        ("default", ["ssh", "inject:start", "inject:end", "ssh", "undo"], 0),
        ("before-method-only", ["ssh", "inject:start", "inject:end", "undo"], 0),
        ("after-method-only", ["inject:start", "inject:end", "ssh", "undo"], 0),
        ("during-method-only", ["inject:end", "inject:start", "ssh", "undo"], 1),
        ("continuously", ["inject:end", "inject:start", "ssh", "ssh", "ssh", "undo"], 1),
    ],
)
def test_hypothesis_strategies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, strategy: str, lines: list[str], during: int
) -> None:
    # the command line overrides the experiment's runtime block (never for rollbacks is kept: rollbacks
    # given on the command line too, as `default`)
    concurrent = strategy in ("during-method-only", "continuously")
    seen = agree(
        tmp_path,
        monkeypatch,
        "strategies",
        args=("--hypothesis-strategy", strategy, "--rollback-strategy", "default"),
        hypothesis_strategy=strategy,
        rollback_strategy="default",
        ordered=not concurrent,
    )
    assert seen["lines"] == lines
    assert seen["steady_states"][2] == during


def test_the_runtime_block_sets_the_strategies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = agree(tmp_path, monkeypatch, "strategies")  # before-method-only, rollbacks never
    assert seen["lines"] == ["ssh", "inject:start", "inject:end"]
    assert seen["rollbacks"] == []


@pytest.mark.parametrize(
    ("name", "strategy", "played"),
    [
        ("deviating", "default", True),
        ("deviating", "always", True),
        ("deviating", "never", False),
        ("deviating", "deviated", True),
        ("plain", "deviated", False),
        ("plain", "always", True),
    ],
)
def test_rollback_strategies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, strategy: str, played: bool
) -> None:
    seen = agree(tmp_path, monkeypatch, name, args=("--rollback-strategy", strategy), rollback_strategy=strategy)
    assert seen["deviated"] is (name == "deviating")
    assert (seen["rollbacks"] == [("undo", "succeeded")]) is played


def test_experiment_level_controls_run_in_chaos_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = agree(tmp_path, monkeypatch, "controls")
    hooks = [line for line in seen["lines"] if line.startswith("control:") and "activity" not in line]
    assert hooks == [
        "control:configure",
        "control:before_experiment",
        "control:before_hypothesis",
        "control:after_hypothesis",
        "control:before_method",
        "control:after_method runs=2",
        "control:before_hypothesis",
        "control:after_hypothesis",
        "control:before_rollback",
        "control:after_rollback",
        "control:after_experiment status=completed",
        "control:cleanup",
    ]


def test_an_activity_control_interrupting_means_no_rollbacks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = agree(tmp_path, monkeypatch, "activity-interrupt")
    assert seen["status"] == "interrupted"
    assert seen["run"] == [("first", "succeeded")]
    assert seen["rollbacks"] == []
    assert seen["lines"] == ["ssh", "first"]


def test_a_safeguard_refusing_runs_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = agree(tmp_path, monkeypatch, "safeguard")
    assert seen["status"] == "interrupted"
    assert seen["lines"] == ["safeguard:refused"]


def test_a_global_safeguard_from_the_settings_refuses_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = {"controls": {"safeguard": {"provider": {"type": "python", "module": "tests.unit.ctk.refuse"}}}}
    seen = agree(tmp_path, monkeypatch, "plain", settings=settings)
    assert seen["status"] == "interrupted"
    assert seen["lines"] == ["safeguard:refused"]


@pytest.mark.parametrize("name", ["plain", "controls", "activity-interrupt"])
def test_global_controls_from_the_settings_apply_as_under_chaos(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    # with and without top-level controls, and with activity-level ones: where drill's control goes
    # changes nothing in which controls chaoslib applies where
    settings = {"controls": {"recorder": {"provider": {"type": "python", "module": "tests.unit.ctk.controls"}}}}
    seen = agree(tmp_path, monkeypatch, name, settings=settings)
    assert "control:before_experiment" in seen["lines"]


def test_dynamic_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = agree(tmp_path, monkeypatch, "dynamic-config")
    assert seen["lines"] == ["config-probe", "ssh", "dyn=from-probe", "ssh", "undo"]


def test_var_wins_over_var_file_and_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    var_file = tmp_path / "vars.json"
    var_file.write_text(json.dumps({"configuration": {"who": "file"}}), encoding="utf-8")
    cases = [
        ((), {}, (), "who=experiment"),
        (("--var-file", str(var_file)), {}, (var_file,), "who=file"),
        (("--var", "who=cli"), {"who": "cli"}, (), "who=cli"),
        (("--var", "who=cli", "--var-file", str(var_file)), {"who": "cli"}, (var_file,), "who=cli"),
    ]
    for i, (args, extra, files, line) in enumerate(cases):
        seen = agree(tmp_path / str(i), monkeypatch, "collision", args=args, extra_vars=extra, var_files=files)
        assert line in seen["lines"]


def test_parse_vars_converts_as_chaos_does() -> None:
    assert ctkrun.parse_vars(["a=1", "b:int=2", "c:float=1.5"]) == {"a": "1", "b": 2, "c": 1.5}
    with pytest.raises(errors.ExperimentError):
        ctkrun.parse_vars(["b:int=x"])


@pytest.mark.parametrize("dry", ["probes", "actions", "activities"])
def test_dry_modes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dry: str) -> None:
    seen = agree(tmp_path, monkeypatch, "plain", args=("--dry", dry), dry=dry)
    assert seen["status"] == "completed"


def test_jsonpath_tolerance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if HAS_JSONPATH:
        seen = agree(tmp_path, monkeypatch, "jsonpath")
        assert seen["steady_states"][0] is True
        return
    # without chaostoolkit-lib's `jsonpath` extra both refuse the experiment the same way, before running it
    chaos = chaos_run(tmp_path, "jsonpath")
    assert chaos.returncode == 1 and chaos.side is None
    assert "Install the `jsonpath2` package" in chaos.stderr
    with pytest.raises(errors.ExperimentError, match="jsonpath2"):
        drill_run(tmp_path, monkeypatch, "jsonpath")
    assert not (tmp_path / "drill" / "side-effects.log").exists()


def test_the_journal_is_chaos_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from chaoslib.loader import parse_experiment_from_file  # the JSON/YAML reader chaoslib has

    chaos = chaos_run(tmp_path, "controls")
    assert chaos.side is not None
    outcome, _ = drill_run(tmp_path, monkeypatch, "controls")
    path = tmp_path / "journal.json"
    path.write_text(ctkrun.journal_json(outcome), encoding="utf-8")
    read_back = parse_experiment_from_file(str(path))
    theirs = chaos.side.journal
    assert read_back == json.loads(ctkrun.journal_json(outcome))
    assert set(read_back) == set(theirs)
    assert read_back["experiment"] == theirs["experiment"]  # drill's control is not in it
    assert set(read_back["steady_states"]) == set(theirs["steady_states"])
    for part in ("run", "rollbacks"):
        assert [set(r) for r in read_back[part]] == [set(r) for r in theirs[part]]
        assert [r["activity"] for r in read_back[part]] == [r["activity"] for r in theirs[part]]
    for when in ("before", "after"):
        assert set(read_back["steady_states"][when]) == set(theirs["steady_states"][when])
    assert read_back["status"] == theirs["status"] == "completed"


def test_errors_at_the_boundary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CTK_TEST_LOG", str(tmp_path / "log"))
    noop = ctkrun.NoPhases()
    with pytest.raises(errors.ExperimentError, match="invalid experiment"):
        ctkrun.run_experiment_with_phases({"title": "no method"}, phases=noop)
    with pytest.raises(errors.ExperimentError, match="hypothesis strategy"):
        ctkrun.run_experiment_with_phases(experiment("plain"), phases=noop, hypothesis_strategy="sometimes")
    with pytest.raises(errors.ExperimentError, match="rollback strategy"):
        ctkrun.run_experiment_with_phases(experiment("plain"), phases=noop, rollback_strategy="sometimes")
    with pytest.raises(errors.ExperimentError, match="dry"):
        ctkrun.run_experiment_with_phases(experiment("plain"), phases=noop, dry="everything")
    assert not (tmp_path / "log").exists()
