"""Hostile inputs for ``drill validate``, built on demand in a folder (the big ones are never committed).

Each builder writes what it needs under ``folder`` and returns ``(drill file to validate, file to name)``:
the second is the file the error must name besides the drill file (the experiment, or the drill itself).
Shared by ``test_hostile_input.py`` and ``scripts/bench_hostile_input.py``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
BASE = REPO / "tests" / "data" / "malformed" / "control" / "base-no-automation.yaml"
EXPERIMENT = REPO / "experiments" / "sandbox-kill-service.json"
MB = 1_000_000

Builder = Callable[[Path], tuple[Path, Path]]


def base_text(*, experiment: Path = EXPERIMENT) -> str:
    """The valid control drill, its experiment path made absolute so it loads from any folder."""
    text = BASE.read_text(encoding="utf-8")
    return text.replace("../../../../experiments/sandbox-kill-service.json", str(experiment))


def _drill(folder: Path, text: str, name: str = "drill.yaml") -> tuple[Path, Path]:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path, path


def valid(folder: Path) -> tuple[Path, Path]:
    return _drill(folder, base_text())


def billion_laughs(folder: Path) -> tuple[Path, Path]:
    """1 MB of aliases of aliases: ten levels of ten, then more of the deepest until the file is 1 MB."""
    lines = ['laughs:\n  l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n']
    lines += [f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, 10)]
    filler = f"[{', '.join(['*l9'] * 10)}]"
    text = base_text() + "".join(lines)
    count = (MB - len(text)) // (len(filler) + 12)
    text += "".join(f"  x{i:07d}: {filler}\n" for i in range(count))
    return _drill(folder, text)


def file_50mb(folder: Path) -> tuple[Path, Path]:
    """A valid drill followed by 50 MB of comment: only its size is wrong."""
    path = folder / "drill.yaml"
    with path.open("w", encoding="utf-8") as out:
        out.write(base_text())
        line = "# " + "x" * 98 + "\n"
        out.writelines(line for _ in range(50 * MB // len(line)))
    return path, path


def fifo(folder: Path) -> tuple[Path, Path]:
    """A named pipe with no writer: reading it would block forever."""
    path = folder / "drill.yaml"
    os.mkfifo(path)
    return path, path


def dev_zero(folder: Path) -> tuple[Path, Path]:
    """A symlink to /dev/zero: endless zeros."""
    path = folder / "drill.yaml"
    path.symlink_to("/dev/zero")
    return path, path


def deep_yaml(folder: Path) -> tuple[Path, Path]:
    """10,000 levels of flow sequences in the drill."""
    return _drill(folder, base_text() + "deep: " + "[" * 10_000 + "]" * 10_000 + "\n")


def _experiment(folder: Path, experiment: str, name: str = "experiment.json") -> tuple[Path, Path]:
    path = folder / name
    path.write_text(experiment, encoding="utf-8")
    drill, _ = _drill(folder, base_text(experiment=path))
    return drill, path


def deep_json(folder: Path) -> tuple[Path, Path]:
    """An experiment whose method is nested 10,000 levels deep."""
    experiment = json.loads(EXPERIMENT.read_text(encoding="utf-8"))
    text = json.dumps(experiment)
    text = text.replace('"method": [', '"method": [' + "[" * 10_000 + "]" * 10_000 + ", ", 1)
    return _experiment(folder, text)


def many_activities(folder: Path, count: int = 100_000) -> tuple[Path, Path]:
    """An experiment whose method has 100,000 activities (small ones, so the file stays under its limit)."""
    experiment = json.loads(EXPERIMENT.read_text(encoding="utf-8"))
    experiment["method"] = [{"type": "action", "name": "a"}] * count
    return _experiment(folder, json.dumps(experiment, separators=(",", ":")))


def long_participant_name(folder: Path) -> tuple[Path, Path]:
    """A participant name of 10,000 characters."""
    return _drill(folder, base_text().replace("- name: alice", "- name: " + "a" * 10_000, 1))


HOSTILE: dict[str, Builder] = {
    "billion-laughs-1mb": billion_laughs,
    "file-50mb": file_50mb,
    "fifo": fifo,
    "symlink-dev-zero": dev_zero,
    "yaml-10000-deep": deep_yaml,
    "json-experiment-10000-deep": deep_json,
    "experiment-100000-activities": many_activities,
    "participant-name-10000-chars": long_participant_name,
}


def many_values(folder: Path) -> tuple[Path, Path]:
    """Just under the 1 MiB limit, all small values: what parsing costs before the value count stops it."""
    text = base_text() + "values:\n"
    line = "  - {a: 1, b: x}\n"
    return _drill(folder, text + line * ((1024 * 1024 - len(text) - 1) // len(line)))


def yaml_experiment_4mib(folder: Path) -> tuple[Path, Path]:
    """A YAML experiment just under its 4 MiB limit, all small values."""
    body = "title: t\nmethod:\n" + "  - {type: action, name: a}\n" * ((4 * 1024 * 1024 - 100) // 28)
    return _experiment(folder, body, name="experiment.yaml")


EXTRA: dict[str, Builder] = {
    "yaml-1mib-of-small-values": many_values,
    "yaml-experiment-4mib": yaml_experiment_4mib,
}
