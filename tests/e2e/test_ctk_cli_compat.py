"""The compatibility suite through the command line: `chaos run` against `drill run` of a `mode: chaos` drill.

Each experiment-format case of ``tests/unit/ctk/test_compat.py`` (its experiments in ``tests/data/ctk``, its
parametrisations read from its own marks, its ``chaos run`` harness) runs as a whole command both ways, each
in a subprocess (the cases in parallel threads, drill's on one shared sandbox, each with its own home and
journal), and the two are compared: status, deviated, the method's and the rollbacks' activities, the steady
states, and the side effects in order. Where they differ, it is one of the deliberate differences in the
README's "Chaos Toolkit experiments", asserted as such:

- drill checks the steady state in its preflight, before chaoslib starts: the hypothesis' side effects
  come once more, first;
- in chaos mode drill checks the steady state right after the method, for its own outcome: once more,
  right after the method's side effects (drill's phase comes after every other control's after-method hook);
- when chaoslib stops before the method (a safeguard), drill ends as a failed preflight: exit 2, no report;
- exit codes are drill's (0 held, 3 deviated, 2 nothing changed), where `chaos run` has 0 and 1.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.ctkcli import DrillResult, drill_run, shared_sandbox
from tests.unit.ctk import test_compat
from tests.unit.ctk.harness import DATA, ChaosResult, chaos_run, lines

pytestmark = pytest.mark.e2e

REFUSE = {"controls": {"safeguard": {"provider": {"type": "python", "module": "tests.unit.ctk.refuse"}}}}
RECORD = {"controls": {"recorder": {"provider": {"type": "python", "module": "tests.unit.ctk.controls"}}}}
VARS = {"configuration": {"who": "file"}}


@dataclass(frozen=True)
class Case:
    id: str
    name: str  # the experiment, tests/data/ctk/<name>.json
    args: tuple[str, ...] = ()  # the same options for `chaos run` and `drill run`
    settings: dict[str, Any] | None = None
    var_file: bool = False  # write VARS to a var file, named by "{var_file}" in args
    ordered: bool = True  # background and concurrent hypothesis strategies: compared as multisets


def _params(test: Any) -> list[Any]:
    """A test_compat test's parametrisation, read from its own mark."""
    mark = next(m for m in test.pytestmark if m.name == "parametrize")
    return list(mark.args[1])


def _cases() -> list[Case]:
    cases = [
        Case("plain", "plain"),
        Case("background", "background", ordered=False),
        Case("ref", "ref"),
        Case("ref-to-rollback", "ref-to-rollback"),
        Case("failing-action", "failing-action"),
        Case("runtime-block", "strategies"),
        Case("controls", "controls"),
        Case("activity-interrupt", "activity-interrupt"),
        Case("safeguard", "safeguard"),
        Case("global-safeguard", "plain", settings=REFUSE),
        Case("dynamic-config", "dynamic-config"),
        Case("jsonpath", "jsonpath"),
    ]
    for strategy, _, _ in _params(test_compat.test_hypothesis_strategies):
        args = ("--hypothesis-strategy", strategy, "--rollback-strategy", "default")
        concurrent = strategy in ("during-method-only", "continuously")
        cases.append(Case(f"hypothesis-{strategy}", "strategies", args, ordered=not concurrent))
    for name, strategy, _ in _params(test_compat.test_rollback_strategies):
        cases.append(Case(f"rollbacks-{strategy}-{name}", name, ("--rollback-strategy", strategy)))
    for name in _params(test_compat.test_global_controls_from_the_settings_apply_as_under_chaos):
        cases.append(Case(f"global-controls-{name}", name, settings=RECORD))
    for dry in _params(test_compat.test_dry_modes):
        cases.append(Case(f"dry-{dry}", "plain", ("--dry", dry)))
    cases += [
        Case("var", "collision", ("--var", "who=cli")),
        Case("var-file", "collision", ("--var-file", "{var_file}"), var_file=True),
        Case("var-and-var-file", "collision", ("--var", "who=cli", "--var-file", "{var_file}"), var_file=True),
    ]
    return cases


CASES = _cases()


@dataclass(frozen=True)
class Outcome:
    chaos: ChaosResult
    chaos_log: Path  # chaos run's side effects, also when it wrote no journal
    drill: DrillResult


@pytest.fixture(scope="module")
def sandbox_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with shared_sandbox(tmp_path_factory.mktemp("compat-sandbox")) as home:
        yield home


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory, sandbox_home: Path) -> dict[str, Outcome]:
    root = tmp_path_factory.mktemp("compat")

    def both(case: Case) -> Outcome:
        work = root / case.id
        work.mkdir()
        var_file = work / "vars.json"
        if case.var_file:
            var_file.write_text(json.dumps(VARS), encoding="utf-8")
        args = tuple(a.replace("{var_file}", str(var_file)) for a in case.args)
        chaos = chaos_run(work, case.name, args=args, settings=case.settings)
        return Outcome(
            chaos,
            work / "chaos" / "side-effects.log",
            drill_run(work / "drill", case.name, sandbox=sandbox_home, args=args, settings=case.settings),
        )

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip((c.id for c in CASES), pool.map(both, CASES), strict=True))


def _probe_lines(case: Case) -> list[str]:
    """What one check of the experiment's steady-state hypothesis writes (its probe's label)."""
    return ["json-probe"] if case.name == "jsonpath" else ["ssh"]


def _hypothesis_block(case: Case, *, controls: bool) -> list[str]:
    """One check of the hypothesis, wrapped in the hypothesis/activity hooks when controls apply to it."""
    probe = "json-probe" if case.name == "jsonpath" else "healthy"
    if not controls:
        return _probe_lines(case)
    return [
        "control:before_hypothesis",
        f"control:before_activity {probe}",
        *_probe_lines(case),
        f"control:after_activity {probe}",
        "control:after_hypothesis",
    ]


def _drills_checks(case: Case, *, method_completed: bool) -> tuple[list[str], list[str]]:
    """drill's own steady-state checks: in its preflight (the experiment's own controls apply, the settings'
    global ones are not loaded yet) and, in chaos mode, right after a method that completed (both apply)."""
    experiment = json.loads((DATA / f"{case.name}.json").read_text(encoding="utf-8"))
    recorder = RECORD["controls"]["recorder"]["provider"]["module"]  # the control that logs its hooks
    experiment_records = any(c["provider"]["module"] == recorder for c in experiment.get("controls") or [])
    before = _hypothesis_block(case, controls=experiment_records)
    after = _hypothesis_block(case, controls=experiment_records or case.settings == RECORD)
    return before, after if method_completed else []


def _method_labels(case: Case) -> tuple[list[str], list[str]]:
    """Prefixes of the side effects of the experiment's method and of its rollbacks (from the experiment)."""
    experiment = json.loads((DATA / f"{case.name}.json").read_text(encoding="utf-8"))

    def labels(activities: list[dict[str, Any]]) -> list[str]:
        out: list[str] = []
        for activity in activities:
            provider = activity.get("provider") or {}
            arguments = provider.get("arguments") or {}
            if provider.get("func") == "break_it":
                out.append("break")
            elif "label" in arguments:
                out.append(str(arguments["label"]).split("${")[0])
        return out

    return labels(experiment.get("method") or []), labels(experiment.get("rollbacks") or [])


def _insertions(chaos: list[str], drill: list[str], before: list[str], after: list[str]) -> list[int]:
    """Every m with drill == before + chaos[:m] + after + chaos[m:]."""
    return [m for m in range(len(chaos) + 1) if drill == [*before, *chaos[:m], *after, *chaos[m:]]]


def _is(line: str, prefixes: list[str]) -> bool:
    return any(line == p or line.startswith(p + ":") or (p.endswith("=") and line.startswith(p)) for p in prefixes)


SPECIAL = {"safeguard", "global-safeguard", "ref-to-rollback"}


@pytest.mark.parametrize("case", [c for c in CASES if c.id not in SPECIAL], ids=lambda c: c.id)
def test_chaos_run_and_drill_run_agree(outcomes: dict[str, Outcome], case: Case) -> None:
    chaos, drill = outcomes[case.id].chaos, outcomes[case.id].drill
    assert chaos.side is not None, chaos.stderr
    assert drill.side is not None, drill.output
    expected = chaos.side.summary(ordered=case.ordered)
    seen = drill.side.summary(ordered=case.ordered)
    for key in ("status", "deviated", "run", "rollbacks", "steady_states"):
        assert seen[key] == expected[key], f"{key}: drill {seen[key]!r}, chaos run {expected[key]!r}"
    # exit status: chaos run's 0/1, drill's own codes for the same outcome
    if expected["status"] == "completed":
        assert chaos.returncode == (1 if expected["deviated"] else 0)
        assert drill.returncode == (3 if expected["deviated"] else 0), drill.output  # 3: deviated, not recovered
    else:
        assert (chaos.returncode, expected["status"]) == (1, "interrupted")
        assert drill.returncode == 4, drill.output  # aborted by chaoslib's interruption; nothing to restore
    # the side effects: chaos run's, plus drill's own two checks of the steady state, where the README says
    completed = expected["status"] == "completed"
    before, after = _drills_checks(case, method_completed=completed)
    if not case.ordered:  # concurrent activities or checks: the same side effects, in some order
        assert Counter(drill.lines) == Counter(chaos.side.lines) + Counter(before) + Counter(after)
        return
    fits = _insertions(chaos.side.lines, drill.lines, before, after)
    assert fits, f"drill's side effects\n{drill.lines}\nare not chaos run's\n{chaos.side.lines}\nwith {before} first"
    # drill's check after the method comes after the method's side effects and before the rollbacks'
    method, rollbacks = _method_labels(case)
    chaos_lines = chaos.side.lines
    first_rollback = min((i for i, line in enumerate(chaos_lines) if _is(line, rollbacks)), default=len(chaos_lines))
    last_method = max((i for i, line in enumerate(chaos_lines[:first_rollback]) if _is(line, method)), default=-1)
    assert any(last_method < m <= first_rollback for m in fits), (fits, last_method, first_rollback)


@pytest.mark.parametrize("case", [c for c in CASES if c.id in ("safeguard", "global-safeguard")], ids=lambda c: c.id)
def test_a_safeguard_refusing_is_a_failed_preflight_for_drill(outcomes: dict[str, Outcome], case: Case) -> None:
    chaos, drill = outcomes[case.id].chaos, outcomes[case.id].drill
    assert chaos.side is not None and chaos.side.status == "interrupted" and chaos.returncode == 1
    assert chaos.side.lines == ["safeguard:refused"]
    # drill: its preflight checked the steady state, then chaoslib's safeguard refused: nothing changed, exit 2
    assert drill.returncode == 2 and "nothing was changed" in drill.output, drill.output
    assert drill.report is None
    before, _ = _drills_checks(case, method_completed=False)
    assert drill.lines == [*before, *chaos.side.lines]


def test_a_ref_to_a_rollback_crashes_chaos_and_drill_plays_the_rollbacks_again(outcomes: dict[str, Outcome]) -> None:
    case = next(c for c in CASES if c.id == "ref-to-rollback")
    chaos, drill = outcomes[case.id].chaos, outcomes[case.id].drill
    assert chaos.returncode == 1 and chaos.side is None  # a traceback during the rollbacks, no journal
    assert "could not find referenced activity 'undo'" in chaos.stderr
    chaos_lines = lines(outcomes[case.id].chaos_log)
    assert chaos_lines[-1] == "undo"
    # drill journals chaoslib's failure and plays the rollbacks itself (the README: chaoslib could not), which
    # fail the same way at the ref: `undo` once more
    assert "rollbacks failed: could not find referenced activity 'undo'" in drill.output, drill.output
    assert drill.report is not None and drill.side is None  # reported, without a Chaos Toolkit journal
    before, after = _drills_checks(case, method_completed=True)
    assert _insertions([*chaos_lines, "undo"], drill.lines, before, after), (chaos_lines, drill.lines)
