"""``drill sandbox``: the local sandbox target."""

from __future__ import annotations

import argparse

from orchestrator import errors
from orchestrator.cli import context
from orchestrator.sandbox import control


def sandbox(args: argparse.Namespace) -> int:
    home = context.paths(args).sandbox_home
    client = control.SandboxClient(home)
    try:
        if args.action == "start":
            # One supervisor per home: a live one (even if its folder was deleted) is reported, never doubled.
            already = control.running(home) is not None
            status = control.start_sandbox(home, port=args.port)
            print(
                f"sandbox {'already ' if already else ''}running: service {status.url}, "
                f"supervisor pid {status.supervisor_pid} (instance {status.instance}), home {home}"
            )
        elif args.action == "stop":
            stopped = control.stop_sandbox(home)
            print("sandbox stopped" if stopped else "no sandbox was running")
        elif args.action == "restart":
            status = client.restart_service()
            client.wait_healthy(timeout_s=10.0)
            print(f"service restarted (pid {status.service.pid}) and healthy at {status.url}")
        else:
            status = client.status()
            service = status.service
            print(
                f"supervisor pid {status.supervisor_pid} (instance {status.instance}), "
                f"auto-restart {'on' if status.autorestart else 'OFF'}"
            )
            print(
                f"service {'running' if service.running else 'DOWN'} (pid {service.pid}), "
                f"healthy: {client.healthy()}, automatic restarts: {service.restarts}, url {status.url}"
            )
            for key, value in status.annotations.items():
                print(f"marker {key}: {value}")
    except control.SandboxError as exc:
        raise errors.TargetError(str(exc)) from exc
    return 0
