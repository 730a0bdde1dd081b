"""Client for the sandbox supervisor, and starting/stopping it as a detached daemon.

The client finds the supervisor through its home lock (``homelock.py``), not through its files, so it reaches
the one supervisor of a home even while that supervisor re-creates files someone deleted.
"""

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
from orchestrator.sandbox import homelock

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


class SandboxConflictError(SandboxError):
    """A marker-guarded operation was refused: the marker on the key is another run's (or absent)."""

    def __init__(self, message: str, *, holder: str) -> None:
        super().__init__(message)
        self.holder = holder  # the run id whose marker is there; "" when there is none


class SandboxInstanceError(SandboxError):
    """The supervisor answering is not the instance the caller claimed on."""

    def __init__(self, message: str, *, instance: str) -> None:
        super().__init__(message)
        self.instance = instance  # the instance that answered


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
    instance: str
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
            instance=str(data.get("instance", "")),
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


@dataclass(frozen=True)
class Claim:
    """A granted claim: the value read in the same step as the marker was written, and the stored marker."""

    original: Mapping[str, Any]
    marker: Mapping[str, Any]
    status: SandboxStatus


@dataclass(frozen=True)
class Release:
    """A release: ``released`` is False when no marker was on the key (nothing was touched)."""

    released: bool
    status: SandboxStatus


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
        # Asked every call: the supervisor gets a new ephemeral control port each time it starts.
        try:
            info = homelock.holder(self.home, timeout_s=self.timeout_s)
        except OSError as exc:
            raise SandboxUnreachable(f"sandbox supervisor of {self.home} does not answer ({exc})") from exc
        if info is None:
            raise SandboxUnreachable(f"no sandbox supervisor running in {self.home}; {_START_HINT}")
        port = info.get("control_port")
        if not isinstance(port, int) or port <= 0:
            raise SandboxUnreachable(f"sandbox supervisor pid {info['pid']} of {self.home} is still starting")
        return port

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
        return SandboxStatus.from_json(self._call_json(method, path, body, timeout_s=timeout_s))

    def _call_json(
        self,
        method: str,
        path: str,
        body: Mapping[str, object] | None = None,
        *,
        timeout_s: float | None = None,
    ) -> dict[str, Any]:
        code, data = self._request(method, path, body, timeout_s=timeout_s)
        if code == 409 and "holder" in data:
            raise SandboxConflictError(str(data.get("error")), holder=str(data["holder"]))
        if code == 409 and "instance" in data:
            raise SandboxInstanceError(str(data.get("error")), instance=str(data["instance"]))
        if code != 200:
            raise SandboxError(f"{method} {path} -> {code}: {data.get('error', data)}")
        return data

    # -- API
    def status(self) -> SandboxStatus:
        return self._call("GET", "/status")

    def set_autorestart(self, enabled: bool, *, guard: tuple[str, str] | None = None) -> SandboxStatus:
        """Set auto-restart; with ``guard=(key, run_id)`` only while that run's marker is on ``key``
        (else ``SandboxConflictError``)."""
        body: dict[str, object] = {"enabled": enabled}
        if guard is not None:
            body["guard"] = {"key": guard[0], "run_id": guard[1]}
        return self._call("PUT", "/autorestart", body)

    def claim(self, key: str, marker: Mapping[str, object]) -> Claim:
        """Write ``marker`` on ``key`` with the current value as its ``original``, in one step on the supervisor.

        ``SandboxConflictError`` (with the ``holder``) when another run's marker is there; for the run that
        already holds it, the original its own marker recorded.
        """
        data = self._call_json("POST", "/claim", {"key": key, "marker": dict(marker)})
        claim = data["claim"]
        return Claim(
            original=dict(claim["original"]), marker=dict(claim["marker"]), status=SandboxStatus.from_json(data)
        )

    def release(self, key: str, *, run_id: str, autorestart: bool, instance: str = "") -> Release:
        """Put ``autorestart`` back and delete ``run_id``'s marker on ``key``, in one step on the supervisor.

        ``SandboxConflictError`` when another run's marker is there (nothing touched); ``SandboxInstanceError``
        when ``instance`` is given and another supervisor instance answers.
        """
        body = {"key": key, "run_id": run_id, "autorestart": autorestart, "instance": instance}
        data = self._call_json("POST", "/release", body)
        return Release(released=bool(data["released"]), status=SandboxStatus.from_json(data))

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


def running(home: Path) -> dict[str, Any] | None:
    """The live supervisor of ``home`` (pid, instance, control port), or None: asks its lock, not its files."""
    return homelock.holder(Path(home))


def start_sandbox(home: Path, *, port: int = 0, restart_delay_s: float = 0.5, timeout_s: float = 15.0) -> SandboxStatus:
    """Start the supervisor as a detached daemon, or return the status of the one already running.

    Never starts a second supervisor for a home: the live one is found by its lock, even when its folder
    was deleted (it re-creates its files), and a supervisor started concurrently exits at once.
    """
    home = Path(home).resolve()
    client = SandboxClient(home)
    with contextlib.suppress(SandboxUnreachable):
        return client.status()
    if running(home) is not None:
        return _await_running(client, timeout_s=timeout_s)
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
        if running(home) is not None:  # another start won the race for this home: that one is the sandbox
            return _await_running(client, timeout_s=timeout_s)
        raise SandboxError(f"sandbox supervisor failed to start (exit {rc}):\n{_log_tail(home)}")
    deadline = time.monotonic() + timeout_s
    try:
        client.wait_until(lambda s: s.service.running, timeout_s=timeout_s)
        client.wait_healthy(timeout_s=max(0.1, deadline - time.monotonic()))
        return client.status()
    except SandboxError as exc:
        raise SandboxError(f"sandbox did not come up in {timeout_s}s ({exc}):\n{_log_tail(home)}") from exc


def _await_running(client: SandboxClient, *, timeout_s: float) -> SandboxStatus:
    try:
        return client.wait_until(lambda s: True, timeout_s=timeout_s)
    except SandboxError as exc:
        raise SandboxError(
            f"a sandbox supervisor owns {client.home} but does not answer ({exc}); not starting a second one"
        ) from exc


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
