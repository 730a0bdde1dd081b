"""``drill validate``, ``drill plan``, ``drill schema``: read-only commands on definitions."""

from __future__ import annotations

import argparse
import json
import sys

from orchestrator import durations, errors, settings
from orchestrator.cli import context
from orchestrator.definitions import loading, models


def validate(args: argparse.Namespace) -> int:
    bad = 0
    for file in args.files:
        try:
            loaded = loading.load_drill(file)
        except errors.DefinitionErrors as exc:
            bad += 1
            for error in exc.errors:
                print(f"drill: {error}", file=sys.stderr)
            continue
        spec = loaded.drill.spec
        print(
            f"ok  {file}: {loaded.drill.metadata.name} ({spec.mode.value}, {len(spec.policies)} policies, "
            f"experiment {loaded.experiment_path.name})"
        )
    return 2 if bad else 0


def schema(args: argparse.Namespace) -> int:
    print(json.dumps(models.json_schema(), indent=2))
    return 0


def plan(args: argparse.Namespace) -> int:
    from orchestrator.plan import planning
    from orchestrator.targets import registry

    loaded = loading.load_drill(args.file)
    paths = context.paths(args)
    target = registry.from_spec(
        loaded.drill.spec.target, default_sandbox_home=paths.sandbox_home, context=getattr(args, "context", None)
    )
    result = planning.make_plan(loaded, target, restore_grace_s=settings.Timing().restore_grace_s)
    print(f"drill {result.drill} ({result.mode}) on {result.target}")
    if result.target_problem:
        print(f"  ! {result.target_problem}")
    print("\nautomation to suspend:")
    for p in result.policies:
        marker = f"  [marked by {p.marker}]" if p.marker else ""
        print(f"  - {p.name} ({p.kind}): now {p.current}; during the drill {p.while_suspended}{marker}")
    if not result.policies:
        print("  - none (automation stays on)")
    print("\nfault (the experiment's method):")
    for line in result.fault:
        print(f"  - {line}")
    print("\nthen rolled back by:")
    for line in result.rollbacks or ["(no rollbacks declared)"]:
        print(f"  - {line}")
    print("\nrestore:")
    for p in result.policies:
        print(f"  - {p.name} back to {p.restore_to}, verified by reading it back")
    print(
        f"\nmax duration {durations.format_duration(result.max_duration_s)}; every suspension is marked with a "
        f"deadline {durations.format_duration(result.deadline_after_s)} after the start "
        "(`drill restore --expired` restores past it)."
    )
    if result.participants:
        print(f"participants: {', '.join(result.participants)}")
    print("\nnothing was changed.")
    return 0
