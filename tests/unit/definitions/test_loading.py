"""Valid drills load: the shipped examples and the defect-free bases the malformed cases are copies of."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.cli.main import main
from orchestrator.definitions import models
from orchestrator.definitions.loading import load_drill
from tests.conftest import AUTO_RECOVERY, NO_AUTOMATION, REPO

CONTROL = REPO / "tests" / "data" / "malformed" / "control"
VALID = [NO_AUTOMATION, AUTO_RECOVERY, *sorted(CONTROL.glob("*.yaml"))]


@pytest.mark.parametrize("path", VALID, ids=[p.name for p in VALID])
def test_valid_drill_loads(path: Path) -> None:
    loaded = load_drill(path)
    assert loaded.path == path
    assert loaded.experiment_path == (REPO / "experiments" / "sandbox-kill-service.json").resolve()
    assert loaded.experiment["method"]
    spec = loaded.drill.spec
    if spec.mode is models.Mode.NO_AUTOMATION:
        assert [p.kind for p in spec.policies] == ["sandbox-autorestart"]
        assert any(p.role is models.Role.RESPONDER for p in spec.participants)
    else:
        assert spec.mode is models.Mode.AUTO_RECOVERY
        assert not spec.policies
        assert spec.expectations.recover is not None


def test_durations_are_seconds() -> None:
    spec = load_drill(CONTROL / "base-no-automation.yaml").drill.spec
    assert spec.detection.interval == 0.25
    assert spec.detection.hold_window == 2.0
    assert spec.guardrails.max_duration == 1200.0
    assert spec.hints[1].after == 480.0


def test_validate_accepts_valid_drills(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", *map(str, VALID)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.count("ok  ") == len(VALID)
