"""Malformed drill files: each gives an error naming the file and the field, never a traceback, and starts nothing.

Every ``tests/data/malformed/NN-*.yaml`` is a copy of a valid drill (``control/``) with exactly one defect and a
header saying what the error must name::

    # expect-field: spec.guardrails.maxDuration   (exact; ``(yaml)`` by prefix; ``a | b``: either)
    # expect-line: 29                              (optional)
    # expect-text: longer than zero                (optional, a substring of the message)
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrator import errors
from orchestrator.cli.main import main
from orchestrator.definitions.loading import load_drill
from orchestrator.sandbox import control
from tests.conftest import REPO

MALFORMED = REPO / "tests" / "data" / "malformed"
FILES = sorted(MALFORMED.glob("*.yaml"))
IDS = [path.name for path in FILES]
# Anything that looks like a Slack token in a drill file must never be echoed back.
_TOKEN = re.compile(r"xox[abposr]-[\w-]+")


@dataclass(frozen=True)
class Expected:
    fields: tuple[str, ...]
    line: int | None
    text: str | None
    secrets: tuple[str, ...]

    def matches(self, field: str) -> bool:
        return any(field.startswith(f) if f == "(yaml)" else field == f for f in self.fields)


def expected(path: Path) -> Expected:
    text = path.read_text(encoding="utf-8")
    headers = dict(re.findall(r"^# expect-(field|line|text): (.+?)\s*$", text, flags=re.MULTILINE))
    assert "field" in headers, f"{path.name}: first line must be '# expect-field: <dotted field>'"
    line = headers.get("line")
    return Expected(
        fields=tuple(f.strip() for f in headers["field"].split(" | ")),
        line=int(line) if line else None,
        text=headers.get("text"),
        secrets=tuple(sorted(set(_TOKEN.findall(text)))),
    )


def _load_errors(path: Path) -> list[errors.DefinitionError]:
    """The DefinitionErrors of ``load_drill``; fail (not error) if it accepts the file or anything else escapes."""
    try:
        load_drill(path)
    except errors.DefinitionErrors as exc:
        return exc.errors
    except Exception as exc:
        pytest.fail(
            f"{path.name}: load_drill raised {type(exc).__name__} instead of DefinitionErrors "
            f"(the CLI would print a traceback): {exc}"
        )
    pytest.fail(f"{path.name}: load_drill accepted a malformed drill")


def _describe(found: list[errors.DefinitionError]) -> str:
    return "\n".join(f"  {e.file}:{e.line}: {e.field}: {e.message}" for e in found)


# --------------------------------------------------------------------------------------------------------------------
def test_at_least_thirty_malformed_files() -> None:
    assert len(FILES) >= 30, f"only {len(FILES)} malformed drill files in {MALFORMED}"
    for path in FILES:
        assert path.read_text(encoding="utf-8").startswith("# expect-field: "), path.name


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_load_drill_names_file_and_field(path: Path) -> None:
    want = expected(path)
    found = _load_errors(path)
    assert found, f"{path.name}: DefinitionErrors without any error"
    assert all(e.file == str(path) for e in found), _describe(found)
    named = [e for e in found if want.matches(e.field)]
    assert named, f"{path.name}: no error names the field {' or '.join(want.fields)}; got:\n{_describe(found)}"
    if want.line is not None:
        assert any(e.line == want.line for e in named), f"{path.name}: expected line {want.line}:\n{_describe(found)}"
    if want.text is not None:
        assert any(want.text in e.message for e in named), f"{path.name}: expected {want.text!r}:\n{_describe(found)}"
    for secret in want.secrets:
        assert all(secret not in str(e) for e in found), f"{path.name}: the token is echoed:\n{_describe(found)}"


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_validate_cli_prints_file_and_field(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    want = expected(path)
    try:
        code = main(["validate", str(path)])
    except Exception as exc:
        pytest.fail(f"{path.name}: `drill validate` let {type(exc).__name__} escape (a traceback): {exc}")
    out, err = capsys.readouterr()
    assert code == 2, f"{path.name}: exit {code}\nstdout: {out}\nstderr: {err}"
    assert "Traceback" not in err + out
    assert str(path) in err, err
    # `drill: FILE[:LINE]: FIELD: MESSAGE`, one line per error
    printed = re.findall(rf"^drill: {re.escape(str(path))}(?::\d+)?: (.+?): ", err, flags=re.MULTILINE)
    assert any(want.matches(field) for field in printed), f"{path.name}: {want.fields} not named:\n{err}"
    for secret in want.secrets:
        assert secret not in err + out, f"{path.name}: the token is echoed:\n{err}"


# --------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModuleSandbox:
    home: Path
    client: control.SandboxClient

    @property
    def journal_db(self) -> Path:
        return self.home / "journal.db"


@pytest.fixture(scope="module")
def module_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleSandbox]:
    """One real sandbox for every `drill run` below, in a drill home the CLI finds through DRILL_HOME."""
    root = tmp_path_factory.mktemp("malformed")
    home = root / "home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DRILL_HOME", str(home))
        mp.setenv("DRILL_ARCHIVE", str(root / "archive"))
        mp.delenv("DRILL_TEST_PAUSE_AT", raising=False)
        control.start_sandbox(home / "sandbox", restart_delay_s=0.3)
        try:
            yield ModuleSandbox(home=home, client=control.SandboxClient(home / "sandbox"))
        finally:
            control.stop_sandbox(home / "sandbox")


def _runs_in_journal(db: Path) -> int:
    if not db.exists():
        return 0
    with contextlib.closing(sqlite3.connect(db)) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        return conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] if "runs" in tables else 0


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_run_starts_nothing_and_leaves_the_sandbox_alone(
    path: Path, module_sandbox: ModuleSandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    assert os.environ["DRILL_HOME"] == str(module_sandbox.home)
    # Never hand a file the loader accepts to `drill run`: it would really run against the shared sandbox.
    with contextlib.suppress(Exception):
        load_drill(path)
        pytest.fail(f"{path.name}: load_drill accepted it; not running it")
    before = module_sandbox.client.status()
    assert before.autorestart is True
    assert not before.annotations
    assert before.service.running

    escaped: BaseException | None = None
    code: int | None = None
    try:
        code = main(["run", str(path), "--plain"])
    except Exception as exc:
        escaped = exc
    out, err = capsys.readouterr()

    after = module_sandbox.client.status()
    assert after.autorestart is True, f"{path.name}: auto-restart was switched off"
    assert dict(after.annotations) == {}, f"{path.name}: the sandbox was annotated: {dict(after.annotations)}"
    assert after.service.pid == before.service.pid, f"{path.name}: the service was restarted or killed"
    assert after.service.restarts == before.service.restarts
    assert _runs_in_journal(module_sandbox.journal_db) == 0, f"{path.name}: a run was journaled"
    assert escaped is None, f"{path.name}: `drill run` let {type(escaped).__name__} escape (a traceback): {escaped}"
    assert code == 2, f"{path.name}: exit {code}\nstdout: {out}\nstderr: {err}"
    assert "Traceback" not in err + out
    assert str(path) in err, err


# --------------------------------------------------------------------------------------------------------------------
def test_validate_in_a_real_process_prints_no_traceback(
    run_drill: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    path = MALFORMED / "62-slack-token-in-token-env.yaml"
    want = expected(path)
    assert want.secrets
    proc = run_drill("validate", str(path))
    assert proc.returncode == 2, proc
    assert "Traceback" not in proc.stderr
    assert str(path) in proc.stderr
    assert want.fields[0] in proc.stderr
    for secret in want.secrets:
        assert secret not in proc.stderr + proc.stdout
