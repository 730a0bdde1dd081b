"""The front door: ``__all__`` is exactly the public names, each resolvable; light CLI imports stay light."""

from __future__ import annotations

import subprocess
import sys

import orchestrator
from tests.conftest import NO_AUTOMATION, REPO


def test_all_is_exactly_the_public_names() -> None:
    assert sorted(orchestrator.__all__) == sorted(
        [
            "DefinitionError",
            "DefinitionErrors",
            "Drill",
            "DrillError",
            "Engine",
            "LoadedDrill",
            "PreflightError",
            "RunResult",
            "__version__",
            "load_drill",
        ]
    )
    for name in orchestrator.__all__:
        assert getattr(orchestrator, name) is not None


def test_unknown_attribute_is_an_attribute_error() -> None:
    try:
        orchestrator.no_such_thing  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "no_such_thing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


HEAVY = ("kubernetes", "slack_sdk", "apscheduler")
PROBE = """
import sys, contextlib, io
from orchestrator.cli.main import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        code = main({argv!r})
    except SystemExit as exc:
        code = exc.code
loaded = sorted(m for m in {heavy!r} if m in sys.modules)
print(code, ",".join(loaded) or "-")
"""


def _probe(argv: list[str]) -> tuple[str, str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(argv=argv, heavy=HEAVY)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=True,
    ).stdout.split()
    return out[0], out[1]


def test_help_imports_no_heavy_client() -> None:
    code, loaded = _probe(["--help"])
    assert code == "0"
    assert loaded == "-"


def test_validate_imports_no_heavy_client() -> None:
    code, loaded = _probe(["validate", str(NO_AUTOMATION)])
    assert code == "0"
    assert loaded == "-"


def test_every_subcommand_help_has_an_example() -> None:
    from orchestrator.cli import main

    parser = main.build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "cmd")
    for name, sub in subparsers.choices.items():  # type: ignore[union-attr]
        assert "examples:" in (sub.description or ""), name
        assert f"drill {name}" in (sub.description or ""), name
