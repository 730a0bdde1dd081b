"""What the run engine needs of a target."""

from __future__ import annotations

from typing import Any, Protocol

from orchestrator.policies import base


class Target(Protocol):
    key: str
    """Stable identity, stored in the journal: ``sandbox:/path``. Two runs on one key lock each other out."""

    def check_reachable(self) -> str | None:
        """None when reachable, else what is wrong and how to fix it."""
        ...

    def check_permissions(self) -> str | None:
        """None when drill may suspend and restore here, else what is missing."""
        ...

    def experiment_vars(self) -> dict[str, Any]:
        """Values the experiment's configuration can use (``${sandbox_url}``)."""
        ...

    def suspender(self, kind: str, name: str) -> base.Suspender:
        """The suspender for one policy on this target."""
        ...

    def marked(self) -> list[base.Marker]:
        """Every drill marker on this target now (for ``drill restore --expired`` without a journal)."""
        ...

    def simulate_mitigation(self) -> str:
        """What a responder would do to mitigate the sandbox fault (``--auto-respond``); returns what was done."""
        ...
