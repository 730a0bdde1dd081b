"""Adapters: the only modules that import third-party clients (Chaos Toolkit, Kubernetes, Slack, schedulers).

Each translates its dependency's errors into ``orchestrator.errors`` at the boundary.
"""
