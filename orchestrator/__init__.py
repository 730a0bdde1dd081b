"""drill: chaos experiments and no-automation fire drills that always restore automation.

The public front door. Everything else is internal and may change. Names are loaded lazily so
``drill --help`` stays fast: importing ``orchestrator`` costs almost nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
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

_LAZY = {
    "DefinitionError": "orchestrator.errors",
    "DefinitionErrors": "orchestrator.errors",
    "DrillError": "orchestrator.errors",
    "PreflightError": "orchestrator.errors",
    "Drill": "orchestrator.definitions.models",
    "LoadedDrill": "orchestrator.definitions.loading",
    "load_drill": "orchestrator.definitions.loading",
    "Engine": "orchestrator.run.engine",
    "RunResult": "orchestrator.run.engine",
}

if TYPE_CHECKING:
    from orchestrator.definitions.loading import LoadedDrill, load_drill
    from orchestrator.definitions.models import Drill
    from orchestrator.errors import DefinitionError, DefinitionErrors, DrillError, PreflightError
    from orchestrator.run.engine import Engine, RunResult


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'orchestrator' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
