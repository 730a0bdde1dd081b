"""What the run engine needs of a target."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from orchestrator.definitions import models
from orchestrator.policies import base

if TYPE_CHECKING:
    from orchestrator.adapters import kubewatch

Policy = models.SandboxAutorestartPolicy | models.KubernetesPolicy


class Target(Protocol):
    key: str
    """Stable identity, stored in the journal: ``sandbox:/path``. Two runs on one key lock each other out."""
    concurrency: int
    """Requests in flight at once when suspending and restoring many objects (1: one after another)."""

    def check_reachable(self) -> str | None:
        """None when reachable, else what is wrong and how to fix it."""
        ...

    def check_permissions(self) -> str | None:
        """None when drill may suspend and restore here, else what is missing."""
        ...

    def prepare_experiment(self) -> None:
        """Point the experiment's own clients (chaostoolkit-kubernetes) at this target, before any of it runs."""
        ...

    def experiment_vars(self) -> dict[str, Any]:
        """Values the experiment's configuration can use (``${sandbox_url}``)."""
        ...

    def suspender(self, kind: str, name: str) -> base.Suspender:
        """The suspender for one suspension unit, from what the journal or a marker stored (kind, unit name)."""
        ...

    def units(self, policy: Policy) -> list[base.Suspender]:
        """The suspension units of one policy of a drill file, in order: one per object it selects.

        Raises ``errors.PolicyError`` / ``errors.TargetError`` when the selection cannot be made."""
        ...

    def lock(self, *, run_id: str, deadline_at: float) -> str | None:
        """Take the target's own lock for ``run_id`` (beside the journal's): None when held, else who holds it."""
        ...

    def renew_lock(self, *, run_id: str) -> str | None:
        """Keep the lock alive (called with the run's heartbeat); never raises.

        None while the lock is held (a renewal that merely failed is tried again at the next heartbeat); else
        why it is lost (another run holds it, or it is gone): the run then aborts and restores."""
        ...

    def unlock(self, *, run_id: str) -> None:
        """Free the lock if ``run_id`` holds it; never raises."""
        ...

    def preflight(self, suspenders: Sequence[base.Suspender]) -> list[str]:
        """Every problem that would make a suspension fail, found without changing anything."""
        ...

    def marked(self) -> list[base.Marker]:
        """Every drill marker on this target now (for ``drill restore --expired`` without a journal)."""
        ...

    def simulate_mitigation(self) -> str:
        """What a responder would do to mitigate the sandbox fault (``--auto-respond``); returns what was done."""
        ...

    def watch_conditions(
        self, conditions: Sequence[models.WatchCondition], *, now: Callable[[], float]
    ) -> kubewatch.ConditionWatch | None:
        """A watch of ``detection.conditions`` on this target, not started yet (None: the target has none);
        ``now`` stamps each event's receipt."""
        ...
