"""`drill validate` accepts exactly what `chaos validate` accepts, plus drill's own documented checks.

Every experiment in ``validate_corpus/`` is given to ``chaos validate`` (one subprocess each) and, wrapped in
a ``mode: chaos`` drill, to one ``drill validate`` of all the wrappers (as ``drill validate drills/*.yaml``
is used). The file name says what chaos is expected to say (``valid-*``: accepted, ``invalid-*``: refused,
``drill-extra-*``: accepted by chaos, refused by one of drill's documented extra checks, listed below with
the words drill refuses it in). The two must agree on every other file.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import drill_cmd
from tests.unit.ctk.harness import CHAOS, REPO

CORPUS = Path(__file__).resolve().parent / "validate_corpus"
FILES = sorted(p.name for p in CORPUS.iterdir() if p.suffix != ".py" and p.is_file())

#: drill's extra checks on an experiment (README, "Chaos Toolkit experiments"): the bounds every definition is
#: read within, and no duplicate YAML keys. Each file here is one chaos accepts and drill refuses, for this reason.
DRILL_EXTRA = {
    "drill-extra-duplicate-key.yaml": "duplicate key 'name'",
    "drill-extra-many-aliases.yaml": "uses more than 200 aliases",
    "drill-extra-too-deep.json": "nested deeper than 64 levels",
    "drill-extra-too-many-activities.json": "1,001 activities",
}


@dataclass(frozen=True)
class Verdicts:
    chaos: dict[str, subprocess.CompletedProcess[str]]
    drill_ok: set[str]
    drill_refused: dict[str, list[str]]  # the experiment's name -> drill's error lines for its wrapper
    drill_output: str
    drill_returncode: int


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO), DRILL_HOME=str(home), DRILL_PARITY_TOKEN="parity")
    for unset in ("DRILL_PARITY_SURELY_UNSET", "DRILL_PARITY_SURELY_UNSET_TOO", "DRILL_PARITY_PASSWORD_UNSET"):
        env.pop(unset, None)
    return env


def _wrap(folder: Path, name: str) -> Path:
    drill = {
        "apiVersion": "drill.dev/v1alpha1",
        "kind": "Drill",
        "metadata": {"name": "parity"},
        "spec": {"mode": "chaos", "target": {"kind": "sandbox"}, "experiment": {"path": str(CORPUS / name)}},
    }
    path = folder / f"{name}.drill.yaml"
    path.write_text(json.dumps(drill), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Verdicts]:
    work = tmp_path_factory.mktemp("parity")
    env = _env(work / "home")
    settings = work / "settings.yaml"
    settings.write_text("{}\n", encoding="utf-8")

    def chaos(name: str) -> subprocess.CompletedProcess[str]:
        command = [str(CHAOS), "--no-version-check", "--no-log-file", "--settings", str(settings)]
        return subprocess.run(
            [*command, "validate", str(CORPUS / name)],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    with ThreadPoolExecutor(max_workers=4) as pool:
        by_chaos = dict(zip(FILES, pool.map(chaos, FILES), strict=True))
    wrappers = {name: _wrap(work, name) for name in FILES}
    done = subprocess.run(
        drill_cmd("validate", *(str(p) for p in wrappers.values())),
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    ok = {name for name, path in wrappers.items() if re.search(rf"^ok  {re.escape(str(path))}:", done.stdout, re.M)}
    refused = {
        name: lines
        for name, path in wrappers.items()
        if (lines := [line for line in done.stderr.splitlines() if line.startswith(f"drill: {path}:")])
    }
    yield Verdicts(by_chaos, ok, refused, done.stdout + done.stderr, done.returncode)


def test_the_corpus_is_broad() -> None:
    assert len(FILES) >= 25
    assert {Path(f).suffix for f in FILES} >= {".json", ".yaml", ".yml"}
    assert sum(f.startswith("valid-") for f in FILES) >= 10 and sum(f.startswith("invalid-") for f in FILES) >= 20
    assert all(f.startswith(("valid-", "invalid-", "drill-extra-")) for f in FILES), FILES
    assert sorted(f for f in FILES if f.startswith("drill-extra-")) == sorted(DRILL_EXTRA)


def test_drill_validate_gives_every_file_one_verdict_and_no_traceback(verdicts: Verdicts) -> None:
    assert "Traceback" not in verdicts.drill_output, verdicts.drill_output
    assert not (verdicts.drill_ok & set(verdicts.drill_refused))
    assert verdicts.drill_ok | set(verdicts.drill_refused) == set(FILES), verdicts.drill_output
    assert verdicts.drill_returncode == 2  # some were refused


@pytest.mark.parametrize("name", FILES)
def test_drill_validate_agrees_with_chaos_validate(verdicts: Verdicts, name: str) -> None:
    chaos = verdicts.chaos[name]
    chaos_ok = chaos.returncode == 0
    said = chaos.stdout + chaos.stderr
    if name.startswith("invalid-"):
        assert not chaos_ok, f"chaos validate accepted {name}:\n{said}"
    else:
        assert chaos_ok and "experiment syntax and semantic look valid" in said, f"chaos refused {name}:\n{said}"
    drill_ok = name in verdicts.drill_ok
    if name in DRILL_EXTRA:
        assert not drill_ok, f"drill accepted {name}, which one of its extra checks should refuse"
        assert DRILL_EXTRA[name] in " ".join(verdicts.drill_refused[name])
    else:
        why = "\n".join(verdicts.drill_refused.get(name, [])) or said
        assert drill_ok is chaos_ok, f"{name}: chaos {'accepts' if chaos_ok else 'refuses'} it, drill does not:\n{why}"
    if not drill_ok:  # the refusal names the drill file, the field and the experiment
        assert any("spec.experiment.path" in line and name in line for line in verdicts.drill_refused[name])
