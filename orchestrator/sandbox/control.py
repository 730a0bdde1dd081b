"""Client for the sandbox supervisor, and starting/stopping it as a detached daemon."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from orchestrator import processes

SUPERVISOR_FILE = "supervisor.json"
STATE_FILE = "state.json"
SUPERVISOR_LOG = "supervisor.log"
_START_HINT = "run `drill sandbox start`"


class SandboxError(Exception):
    """Base of sandbox errors."""


class SandboxUnreachable(SandboxError):  # noqa: N818 (public name)
    """The supervisor is not running or does not answer."""


class SandboxTimeoutError(SandboxError, TimeoutError):
    """A bounded wait on the sandbox ran out."""


@dataclass(frozen=True)
class ServiceStatus:
    pid: int | None
    running: bool
    restarts: int
    last_exit_code: int | None
    last_exit_at: float | None
    started_at: float | None


@dataclass(frozen=True)
class SandboxStatus:
    supervisor_pid: int
    autorestart: bool
    annotations: Mapping[str, str]
    service_port: int
    service: ServiceStatus

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.service_port}"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SandboxStatus:
        svc = data["service"]
        return cls(
            supervisor_pid=int(data["supervisor_pid"]),
            autorestart=bool(data["autorestart"]),
            annotations=MappingProxyType({str(k): str(v) for k, v in data["annotations"].items()}),
            service_port=int(data["service_port"]),
            service=ServiceStatus(
                pid=svc["pid"],
                running=bool(svc["running"]),
                restarts=int(svc["restarts"]),
                last_exit_code=svc["last_exit_code"],
                last_exit_at=svc["last_exit_at"],
                started_at=svc["started_at"],
            ),
        )


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class SandboxClient:
    def __init__(self, home: Path, *, timeout_s: float = 3.0) -> None:
        self.home = Path(home)
        self.timeout_s = timeout_s

    # -- transport
    def _control_port(self) -> int:
        # Re-read every call: the supervisor gets a new ephemeral control port each time it starts.
        info = _read_json(self.home / SUPERVISOR_FILE)
        if info is None:
            raise SandboxUnreachable(f"no sandbox supervisor running in {self.home}; {_START_HINT}")
        pid = int(info.get("pid", 0))
        if not processes.is_process_alive(pid):
            raise SandboxUnreachable(
                f"sandbox supervisor in {self.home} is gone (stale {SUPERVISOR_FILE}, pid {pid}); {_START_HINT}"
            )
        return int(info["control_port"])

    def _request(
        self,
        method: str,
        path: str,
        body: Mapping[str, object] | None = None,
        *,
        timeout_s: float | None = None,
    ) -> tuple[int, dict[str, Any]]:
        port = self._control_port()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s or self.timeout_s)
        try:
            payload = None if body is None else json.dumps(body).encode()
            headers = {"Content-Type": "application/json"} if payload is not None else {}
            conn.request(method, path, body=payload, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            raise SandboxUnreachable(
                f"sandbox supervisor in {self.home} does not answer on port {port} ({exc}); {_START_HINT}"
            ) from exc
        finally:
            conn.close()
        try:
            data = json.loads(raw or b"{}")
        except ValueError as exc:
            raise SandboxError(f"{method} {path}: bad reply from supervisor: {raw[:200]!r}") from exc
        return resp.status, data

    def _call(
        self,
        method: str,
        path: str,
        body: Mapping[str, object] | None = None,
        *,
        timeout_s: float | None = None,
    ) -> SandboxStatus:
        code, data = self._request(method, path, body, timeout_s=timeout_s)
        if code != 200:
            raise SandboxError(f"{method} {path} -> {code}: {data.get('error', data)}")
        return SandboxStatus.from_json(data)

    # -- API
    def status(self) -> SandboxStatus:
        return self._call("GET", "/status")

    def set_autorestart(self, enabled: bool) -> SandboxStatus:
        return self._call("PUT", "/autorestart", {"enabled": enabled})

    def set_annotation(self, key: str, value: str) -> SandboxStatus:
        return self._call("PUT", _annotation_path(key), {"value": value})

    def delete_annotation(self, key: str) -> SandboxStatus:
        code, data = self._request("DELETE", _annotation_path(key))
        if code == 404:
            return self.status()  # already absent: restoring twice must not fail
        if code != 200:
            raise SandboxError(f"DELETE annotation {key!r} -> {code}: {data.get('error', data)}")
        return SandboxStatus.from_json(data)

    def restart_service(self) -> SandboxStatus:
        # May wait for the old child to stop (SIGTERM, then SIGKILL after 3 s): allow for that.
        return self._call("POST", "/restart", timeout_s=self.timeout_s + 5.0)

    def kill_service(self, sig: int = signal.SIGKILL) -> int:
        st = self.status()
        pid = st.service.pid
        if not st.service.running or pid is None:
            raise SandboxError(f"sandbox service in {self.home} is not running; nothing to kill")
        try:
            os.kill(pid, sig)
        except ProcessLookupError as exc:
            raise SandboxError(f"sandbox service pid {pid} already exited") from exc
        return pid

    def healthy(self) -> bool:
        # The service port comes from the files, not /status: the service's health is its own.
        info = _read_json(self.home / SUPERVISOR_FILE) or _read_json(self.home / STATE_FILE) or {}
        port = info.get("service_port")
        if not isinstance(port, int) or port <= 0:
            return False
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=min(self.timeout_s, 1.0))
        try:
            conn.request("GET", "/healthz")
            resp = conn.getresponse()
            resp.read()
            return resp.status == 200
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()

    def wait_until(
        self, predicate: Callable[[SandboxStatus], bool], *, timeout_s: float, interval_s: float = 0.05
    ) -> SandboxStatus:
        deadline = time.monotonic() + timeout_s
        last: SandboxStatus | SandboxError | None = None
        while True:
            try:
                last = self.status()
                if predicate(last):
                    return last
            except SandboxUnreachable as exc:  # the supervisor may be starting or restarting: keep polling
                last = exc
            if time.monotonic() >= deadline:
                raise SandboxTimeoutError(f"timed out after {timeout_s}s waiting on sandbox {self.home}; last: {last}")
            time.sleep(interval_s)

    def wait_healthy(self, *, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.healthy():
            if time.monotonic() >= deadline:
                raise SandboxTimeoutError(f"timed out after {timeout_s}s waiting for the sandbox service to be healthy")
            time.sleep(0.05)


def _annotation_path(key: str) -> str:
    if not key:
        raise SandboxError("annotation key must not be empty")
    return "/annotations/" + urllib.parse.quote(key, safe="")


def _log_tail(home: Path, lines: int = 20) -> str:
    try:
        return "\n".join((home / SUPERVISOR_LOG).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no supervisor.log)"


def start_sandbox(home: Path, *, port: int = 0, restart_delay_s: float = 0.5, timeout_s: float = 15.0) -> SandboxStatus:
    """Start the supervisor as a detached daemon, or return the status of the one already running."""
    home = Path(home).resolve()
    client = SandboxClient(home)
    with contextlib.suppress(SandboxUnreachable):
        return client.status()
    home.mkdir(parents=True, exist_ok=True)
    # The package may not be installed (run from a checkout): keep `-m orchestrator...` importable.
    pkg_root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (pkg_root, env.get("PYTHONPATH", "")) if p)
    cmd = [
        sys.executable, "-m", "orchestrator.sandbox.supervisor", "--home", str(home), "--port", str(port),
        "--restart-delay", str(restart_delay_s), "--daemonize",
    ]  # fmt: skip
    # --daemonize forks and the intermediate exits at once: we reap it here, the daemon is adopted by init.
    # That leaves no Popen to outlive us (ResourceWarning) and no zombie in a long-lived caller.
    with (home / SUPERVISOR_LOG).open("ab") as log:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, close_fds=True,
            start_new_session=True, cwd=home, env=env,
        )  # fmt: skip
        try:
            rc = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            rc = -1
    if rc != 0:
        raise SandboxError(f"sandbox supervisor failed to start (exit {rc}):\n{_log_tail(home)}")
    deadline = time.monotonic() + timeout_s
    try:
        client.wait_until(lambda s: s.service.running, timeout_s=timeout_s)
        client.wait_healthy(timeout_s=max(0.1, deadline - time.monotonic()))
        return client.status()
    except SandboxError as exc:
        raise SandboxError(f"sandbox did not come up in {timeout_s}s ({exc}):\n{_log_tail(home)}") from exc


def stop_sandbox(home: Path, *, timeout_s: float = 10.0) -> bool:
    """Stop the service and its supervisor. False if no supervisor was running."""
    client = SandboxClient(Path(home), timeout_s=timeout_s)
    try:
        pid = client.status().supervisor_pid
    except SandboxUnreachable:
        return False
    with contextlib.suppress(SandboxUnreachable):  # it may exit before the reply reaches us
        client._request("POST", "/stop", timeout_s=timeout_s)
    deadline = time.monotonic() + timeout_s
    while processes.is_process_alive(pid):
        if time.monotonic() >= deadline:
            raise SandboxTimeoutError(f"sandbox supervisor pid {pid} still alive {timeout_s}s after stop")
        time.sleep(0.05)
    return True
