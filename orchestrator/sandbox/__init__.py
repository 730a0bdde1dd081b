"""Local sandbox target: a real service under a real supervisor, so a drill runs on a laptop.

- The **service** (``service.py``) is a tiny HTTP server on a loopback port with ``GET /healthz``.
- The **policy** a drill suspends is the supervisor's *auto-restart* (``supervisor.py``): while it is on,
  a dead service is respawned after a short delay, so a fault heals itself and nobody practises anything.
  Suspending it (``PUT /autorestart {"enabled": false}``) is persisted to ``state.json`` before the reply,
  as are the annotations carrying the drill's marker (run id, original value, deadline).
- The **fault** (``chaos.py``, a Chaos Toolkit python provider) is SIGKILL of the service process.
- The **mitigation** a human performs is ``POST /restart`` (``SandboxClient.restart_service``); restoring the
  policy is re-enabling auto-restart, which also brings a down service back by itself.

``control.py`` is the client used by the CLI, the suspender and the tests; it starts and stops the supervisor
as a detached daemon whose home directory holds all of its state. ``endpoints.py`` is the supervisor's control
API, where a drill *claims* the policy (marker written and prior value read in one step under the supervisor's
lock), suspends it only under its own marker, and *releases* it. ``homelock.py`` keeps one supervisor per home
even when the folder is deleted: the supervisor re-creates its files, and clients find it by its lock.
"""
