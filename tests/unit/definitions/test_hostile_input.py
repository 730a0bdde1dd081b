"""Bad input never costs memory or time: each hostile input is refused by `drill validate` as a definition error.

Each case runs `drill validate` in a real process, under a small measuring process whose only child it is, so
``getrusage(RUSAGE_CHILDREN).ru_maxrss`` is that validation's peak memory. The wall-time bound is the
acceptance's 2 s, widened only by how much slower than 1 s a valid drill validates on this machine right now
(the interpreter and imports dominate both, and the machine is shared).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from orchestrator import errors
from orchestrator.definitions import limits, loading, reading
from tests.conftest import REPO
from tests.unit.definitions import hostile

MAX_RSS_MB = 200
MAX_WALL_S = 2.0

# Runs `drill validate FILE` as its only child and reports what it cost.
MEASURE = """
import json, resource, subprocess, sys, time
start = time.monotonic()
proc = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "validate", sys.argv[1]],
                      capture_output=True, text=True, timeout=60)
wall = time.monotonic() - start
rss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"code": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr,
                  "wall_s": wall, "rss_mb": rss_kb / 1024}))
"""


@dataclass(frozen=True)
class Cost:
    code: int
    stdout: str
    stderr: str
    wall_s: float
    rss_mb: float


def measure(drill: Path) -> Cost:
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, str(drill)], capture_output=True, text=True, cwd=REPO, timeout=120, check=True
    )
    return Cost(**json.loads(out.stdout))


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Cost:
    """`drill validate` of a valid drill: the best of two, so a hiccup of the shared machine does not count."""
    drill, _ = hostile.valid(tmp_path_factory.mktemp("valid"))
    costs = [measure(drill) for _ in range(2)]
    assert all(c.code == 0 for c in costs), costs
    return min(costs, key=lambda c: c.wall_s)


CASES = {**hostile.HOSTILE, **hostile.EXTRA}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_validate_refuses_hostile_input_fast_and_small(case: str, tmp_path: Path, baseline: Cost) -> None:
    drill, named = CASES[case](tmp_path)
    cost = measure(drill)
    report = f"{case}: exit {cost.code}, {cost.wall_s:.2f} s, {cost.rss_mb:.0f} MB\n{cost.stdout}{cost.stderr[:2000]}"
    assert cost.code == 2, report
    assert "Traceback" not in cost.stderr + cost.stdout, report
    assert f"drill: {drill}" in cost.stderr, report
    assert named.name in cost.stderr, report
    assert len(cost.stderr.splitlines()) <= limits.LIMITS.max_errors + 1, report
    assert cost.rss_mb < MAX_RSS_MB, report
    allowed_s = MAX_WALL_S + max(0.0, baseline.wall_s - 1.0)
    assert cost.wall_s < allowed_s, f"{report}\n(valid drill: {baseline.wall_s:.2f} s, allowed {allowed_s:.2f} s)"


# --------------------------------------------------------------------------------------------------------------------
# The bounded reader


def test_reader_refuses_a_fifo_without_blocking(tmp_path: Path) -> None:
    path = tmp_path / "pipe.yaml"
    os.mkfifo(path)
    done: list[BaseException] = []

    def read() -> None:
        try:
            reading.read_text(path, max_bytes=100)
        except reading.InputRefused as exc:
            done.append(exc)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    thread.join(timeout=5)
    if thread.is_alive():  # unblock the reader so the test process can end, then fail
        with open(path, "w", encoding="utf-8"):
            pass
        pytest.fail("reading a FIFO blocked")
    assert done
    assert "FIFO" in str(done[0])


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (lambda tmp: Path("/dev/zero"), "character device"),
        (lambda tmp: tmp, "directory"),
        (lambda tmp: tmp / "missing.yaml", "no such file"),
    ],
    ids=["device", "directory", "missing"],
)
def test_reader_refuses_what_is_not_a_regular_file(make: object, kind: str, tmp_path: Path) -> None:
    assert callable(make)
    with pytest.raises(reading.InputRefused, match=kind):
        reading.read_text(make(tmp_path), max_bytes=100)


def test_reader_follows_a_symlink_to_a_regular_file(tmp_path: Path) -> None:
    (tmp_path / "real.yaml").write_text("a: 1\n", encoding="utf-8")
    (tmp_path / "link.yaml").symlink_to(tmp_path / "real.yaml")
    assert reading.read_text(tmp_path / "link.yaml", max_bytes=100) == "a: 1\n"


def test_reader_reads_up_to_the_limit_and_refuses_one_byte_more(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_bytes(b"x" * 100)
    assert reading.read_text(path, max_bytes=100) == "x" * 100
    with pytest.raises(reading.InputRefused, match=r"is 100 bytes, over the limit of 99 bytes"):
        reading.read_text(path, max_bytes=99)


def test_reader_refuses_text_that_is_not_utf8_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_bytes(b"a: 1\nb: caf\xe9\n")
    with pytest.raises(reading.InputRefused, match="UTF-8") as info:
        reading.read_text(path, max_bytes=100)
    assert info.value.line == 2


# --------------------------------------------------------------------------------------------------------------------
# Bounded YAML and JSON

BOUNDS = reading.Bounds(max_depth=64, max_nodes=10_000, max_aliases=200)


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_yaml_nesting_up_to_the_limit_parses_and_one_more_is_refused() -> None:
    # the document is a mapping holding the lists: its depth is one more than the brackets
    _, data = reading.parse_yaml("a: " + _nested(63), BOUNDS)
    assert isinstance(data, dict)
    with pytest.raises(reading.InputRefused, match="nested deeper than 64 levels") as info:
        reading.parse_yaml("a: " + _nested(64), BOUNDS)
    assert info.value.line == 1


def test_modest_anchors_and_merge_keys_still_work(tmp_path: Path) -> None:
    source = hostile.base_text()
    people = "    - name: alice\n      role: responder\n"
    hints = '    - text: "Is the service process still there?"\n'
    assert people in source
    assert hints in source
    text = source.replace(people, "    - &alice {name: alice, role: responder}\n    - {<<: *alice, name: carol}\n")
    text = text.replace(hints, "    - &hint {text: same advice}\n    - *hint\n")
    drill = tmp_path / "anchors.yaml"
    drill.write_text(text, encoding="utf-8")
    loaded = loading.load_drill(drill)
    assert [(p.name, p.role.value) for p in loaded.drill.spec.participants][:2] == [
        ("alice", "responder"),
        ("carol", "responder"),
    ]
    assert [h.text for h in loaded.drill.spec.hints][:2] == ["same advice", "same advice"]


def test_billion_laughs_is_refused_while_composing() -> None:
    lines = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 9)]
    with pytest.raises(reading.InputRefused, match="more than 10,000 values once its aliases are expanded") as info:
        reading.parse_yaml("\n".join(lines), BOUNDS)
    assert info.value.line == 4  # l3 would hold 11,111 values


def test_alias_uses_are_capped() -> None:
    text = "a: &a x\nb: [" + ", ".join(["*a"] * 201) + "]\n"
    with pytest.raises(reading.InputRefused, match="more than 200 aliases"):
        reading.parse_yaml(text, BOUNDS)


def test_a_recursive_anchor_is_refused() -> None:
    with pytest.raises(reading.InputRefused, match="cannot contain itself"):
        reading.parse_yaml("a: &a [1, *a]\n", BOUNDS)


def test_bad_scalars_are_refused_with_a_line() -> None:
    with pytest.raises(reading.InputRefused, match="'2026-02-30T00:00:00Z' is not a valid date") as info:
        reading.parse_yaml("a: 1\nwhen: 2026-02-30T00:00:00Z\n", BOUNDS)
    assert info.value.line == 2
    with pytest.raises(reading.InputRefused, match="not a valid number: it has more than 4,300 digits") as info:
        reading.parse_yaml(f"n: {'9' * 5000}\n", BOUNDS)
    assert info.value.line == 1
    assert len(str(info.value)) < 200


def test_a_list_as_a_key_is_a_yaml_error_with_a_line() -> None:
    with pytest.raises(yaml.MarkedYAMLError, match="plain value") as info:
        reading.parse_yaml("a: 1\n? [a, b]\n: c\n", BOUNDS)
    assert info.value.problem_mark is not None
    assert info.value.problem_mark.line == 1


def test_json_depth_and_size_are_bounded() -> None:
    assert reading.parse_json(_nested(64), BOUNDS) == json.loads(_nested(64))
    with pytest.raises(reading.InputRefused, match="nested deeper than 64"):
        reading.parse_json(_nested(65), BOUNDS)
    with pytest.raises(reading.InputRefused, match="nested deeper than 64"):
        reading.parse_json(_nested(100_000), BOUNDS)
    with pytest.raises(reading.InputRefused, match="more than 10,000 values"):
        reading.parse_json(json.dumps([0] * 10_000), BOUNDS)
    assert len(reading.parse_json(json.dumps([0] * 9_999), BOUNDS)) == 9_999


# --------------------------------------------------------------------------------------------------------------------
# Field limits


@pytest.mark.parametrize(
    ("old", "new", "field", "text"),
    [
        ("  description: A copy", "  description: " + "d" * 4001 + " A copy", "metadata.description", "at most 4,000"),
        ("- name: bob", "- name: " + "b" * 65, "spec.participants[1].name", "65 characters, at most 64"),
        ('    - text: "Is', '    - text: "' + "h" * 4001, "spec.hints[0].text", "at most 4,000"),
        (
            "  hints:\n",
            "  hints:\n" + "    - text: again\n" * 101,
            "spec.hints",
            "103 items, at most 100",
        ),
    ],
    ids=["description", "participant-name", "hint-text", "hint-count"],
)
def test_field_limits_name_the_field_and_the_limit(old: str, new: str, field: str, text: str, tmp_path: Path) -> None:
    drill = tmp_path / "drill.yaml"
    source = hostile.base_text()
    assert old in source
    drill.write_text(source.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(errors.DefinitionErrors) as info:
        loading.load_drill(drill)
    named = [e for e in info.value.errors if e.field == field]
    assert named, info.value
    assert text in named[0].message
    assert named[0].line is not None


def test_errors_are_capped_per_file(tmp_path: Path) -> None:
    people = "".join(f"    - name: 'bad name {i}'\n      role: responder\n" for i in range(60))
    drill = tmp_path / "drill.yaml"
    drill.write_text(hostile.base_text().replace("  participants:\n", "  participants:\n" + people), encoding="utf-8")
    with pytest.raises(errors.DefinitionErrors) as info:
        loading.load_drill(drill)
    assert len(info.value.errors) == limits.LIMITS.max_errors + 1
    assert "more problems" in info.value.errors[-1].message


def test_an_experiment_at_the_activity_limit_is_read(tmp_path: Path) -> None:
    _, experiment = hostile.many_activities(tmp_path, count=limits.LIMITS.activities - 2)
    assert len(loading.read_experiment(experiment)["method"]) == limits.LIMITS.activities - 2
    _, experiment = hostile.many_activities(tmp_path, count=limits.LIMITS.activities - 1)
    with pytest.raises(errors.ExperimentError, match="1,001 activities"):
        loading.read_experiment(experiment)


def test_the_limits_show_in_the_json_schema() -> None:
    from orchestrator.definitions import models

    schema = json.dumps(models.json_schema())
    assert '"maxLength": 64' in schema
    assert '"maxItems": 100' in schema


@pytest.mark.parametrize(
    ("text", "refusal"),
    [
        ("a: " + _nested(64), "nested deeper than 64 levels"),
        ("a: " + _nested(10_000), "nested deeper than 64 levels"),
        ("a: &a [1, *a]\n", "cannot contain itself"),
        ("l0: &l0 [" + ", ".join(["x"] * 100) + "]\nl1: [" + ", ".join(["*l0"] * 100) + "]\n", "10,000 values"),
        ("a: &a {b: 1}\nc: {<<: *a, d: 2}\n", None),
    ],
    ids=["depth-65", "depth-10000", "recursive", "laughs", "merge-key"],
)
def test_the_pure_python_parser_has_the_same_bounds(
    text: str, refusal: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without libyaml, PyYAML's own scanner and parser feed the same bounded composer."""
    monkeypatch.setattr(reading, "_LOADER", reading._PureLoader)
    if refusal is None:
        assert reading.parse_yaml(text, BOUNDS)[1] == {"a": {"b": 1}, "c": {"b": 1, "d": 2}}
        return
    with pytest.raises(reading.InputRefused, match=refusal):
        reading.parse_yaml(text, BOUNDS)
