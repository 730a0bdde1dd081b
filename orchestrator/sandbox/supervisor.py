"""The sandbox supervisor: keeps the service running while auto-restart (the drill's policy) is on.

Run as ``python -m orchestrator.sandbox.supervisor --home H --port P [--restart-delay S] [--daemonize]``.
All durable state lives in ``H/state.json`` so a suspension (autorestart off + marker annotation) survives a
crash or restart of the supervisor itself; it is written before any reply that reports it.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any

from orchestrator import processes
from orchestrator.sandbox.control import STATE_FILE, SUPERVISOR_FILE

SERVICE_PID_FILE = "service.pid"
SERVICE_LOG = "service.log"
STOP_GRACE_S = 3.0
_POLL_S = 0.05


def log(msg: str) -> None:
    sys.stderr.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} supervisor[{os.getpid()}] {msg}\n")
    sys.stderr.flush()


def atomic_write_json(path: Path, data: object) -> None:
    """Write-then-rename with fsyncs: a crash leaves the old or the new file, never a torn one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp creates 0600; these files are meant to be read by the operator's tools
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop_process(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.terminate()
        try:
            return proc.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


class Supervisor:
    def __init__(self, home: Path, port: int, restart_delay_s: float) -> None:
        self.home = home
        self.restart_delay_s = restart_delay_s
        # One lock guards every field below; the monitor thread and the HTTP handlers both mutate them.
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._started_at: float | None = None
        self._restart_at: float | None = None  # monotonic time of a pending automatic restart
        self._restarts = 0
        self._last_exit_code: int | None = None
        self._last_exit_at: float | None = None
        self._stopping = False
        self._exit = threading.Event()
        self._signalled = False
        state = self._load_state()
        self.autorestart: bool = bool(state.get("autorestart", True))
        self.annotations: dict[str, str] = {str(k): str(v) for k, v in state.get("annotations", {}).items()}
        persisted_port = int(state.get("service_port", 0))
        self.service_port = port or persisted_port or _free_port()
        self._save_state()

    # -- durable state -------------------------------------------------------------------------------------
    def _load_state(self) -> dict[str, Any]:
        path = self.home / STATE_FILE
        if not path.exists():
            return {}
        # A corrupt file is fatal on purpose: silently resetting it would drop a drill's suspension marker.
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a JSON object")
        return data

    def _save_state(self) -> None:
        atomic_write_json(
            self.home / STATE_FILE,
            {
                "autorestart": self.autorestart,
                "annotations": self.annotations,
                "service_port": self.service_port,
            },
        )

    # -- child process (call with the lock held) -----------------------------------------------------------
    def _spawn_locked(self) -> None:
        with (self.home / SERVICE_LOG).open("ab") as out:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "orchestrator.sandbox.service", "--port", str(self.service_port)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out, close_fds=True, cwd=self.home,
            )  # fmt: skip
        self._started_at = time.time()
        self._restart_at = None
        atomic_write_json(self.home / SERVICE_PID_FILE, self._proc.pid)
        log(f"service started pid={self._proc.pid} port={self.service_port}")

    def _record_exit_locked(self, code: int) -> None:
        assert self._proc is not None
        log(f"service pid={self._proc.pid} exited code={code}")
        self._proc = None
        self._started_at = None
        self._last_exit_code = code
        self._last_exit_at = time.time()

    def _reap_locked(self) -> None:
        """Notice a dead child, and schedule or perform the automatic restart when it is due."""
        if self._proc is not None and (code := self._proc.poll()) is not None:
            self._record_exit_locked(code)
            if self.autorestart and not self._stopping:
                self._restart_at = time.monotonic() + self.restart_delay_s
        if self._proc is None and self._restart_at is not None and time.monotonic() >= self._restart_at:
            if self.autorestart and not self._stopping:
                self._restarts += 1
                log(f"auto-restart #{self._restarts}")
                try:
                    self._spawn_locked()
                except OSError as exc:
                    log(f"auto-restart failed: {exc}; retrying in {self.restart_delay_s}s")
                    self._restart_at = time.monotonic() + self.restart_delay_s
            else:
                self._restart_at = None

    def _monitor(self) -> None:
        # Polling (not a blocking wait) lets one thread own every transition, including timed restarts.
        while not self._exit.wait(_POLL_S):
            with self._lock:
                self._reap_locked()

    def _kill_orphan(self) -> None:
        """A service left behind by a supervisor that was SIGKILLed would hold the port: stop it first."""
        try:
            pid = int(json.loads((self.home / SERVICE_PID_FILE).read_text()))
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError, TypeError):
            return
        if b"orchestrator.sandbox.service" not in cmdline or not processes.is_process_alive(pid):
            return  # pid reused by something else, or already gone
        log(f"stopping orphaned service pid={pid}")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_GRACE_S
            while processes.is_process_alive(pid) and time.monotonic() < deadline:
                time.sleep(_POLL_S)
            if processes.is_process_alive(pid):
                os.kill(pid, signal.SIGKILL)

    # -- operations (called from HTTP handlers) ------------------------------------------------------------
    def status(self) -> dict[str, object]:
        with self._lock:
            self._reap_locked()  # so a just-killed service never reads as running
            proc = self._proc
            return {
                "supervisor_pid": os.getpid(),
                "autorestart": self.autorestart,
                "annotations": dict(self.annotations),
                "service_port": self.service_port,
                "service": {
                    "pid": proc.pid if proc else None,
                    "running": proc is not None,
                    "restarts": self._restarts,
                    "last_exit_code": self._last_exit_code,
                    "last_exit_at": self._last_exit_at,
                    "started_at": self._started_at,
                },
            }

    def set_autorestart(self, enabled: bool) -> None:
        with self._lock:
            self.autorestart = enabled
            self._save_state()
            if not enabled:
                self._restart_at = None  # a restart already pending must not fire once the policy is suspended
            elif self._proc is None and self._restart_at is None and not self._stopping:
                self._restart_at = time.monotonic() + self.restart_delay_s  # auto-restart means: bring it back
            log(f"autorestart={'on' if enabled else 'off'}")

    def set_annotation(self, key: str, value: str) -> None:
        with self._lock:
            self.annotations[key] = value
            self._save_state()
            log(f"annotation set {key}")

    def delete_annotation(self, key: str) -> bool:
        with self._lock:
            if self.annotations.pop(key, None) is None:
                return False
            self._save_state()
            log(f"annotation deleted {key}")
            return True

    def restart(self) -> None:
        """Manual (human) restart: regardless of auto-restart, and not counted in `restarts`."""
        with self._lock:
            if self._stopping:
                raise RuntimeError("supervisor is stopping")
            if self._proc is not None:
                self._record_exit_locked(_stop_process(self._proc))
            log("manual restart")
            self._spawn_locked()

    def stop_service(self) -> None:
        with self._lock:
            self._stopping = True
            self._restart_at = None
            if self._proc is not None:
                self._record_exit_locked(_stop_process(self._proc))

    def request_exit(self) -> None:
        self._exit.set()

    # -- main loop -----------------------------------------------------------------------------------------
    def run(self) -> int:
        def on_signal(signum: int, _frame: FrameType | None) -> None:
            # Only a flag: Event.set() from a signal handler can deadlock on the Event's own lock.
            self._signalled = True

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        self._kill_orphan()
        server = _ControlServer(("127.0.0.1", 0), _ControlHandler, self)
        threading.Thread(target=server.serve_forever, name="control", daemon=True).start()
        control_port = int(server.server_address[1])
        with self._lock:
            self._spawn_locked()
        monitor = threading.Thread(target=self._monitor, name="monitor", daemon=True)
        monitor.start()
        atomic_write_json(
            self.home / SUPERVISOR_FILE,
            {
                "pid": os.getpid(),
                "control_port": control_port,
                "service_port": self.service_port,
                "started_at": time.time(),
            },
        )
        log(f"ready control_port={control_port} service_port={self.service_port} autorestart={self.autorestart}")
        while not self._signalled and not self._exit.wait(0.1):
            pass
        log("stopping")
        self.stop_service()
        self._exit.set()
        monitor.join(timeout=5)
        for name in (SUPERVISOR_FILE, SERVICE_PID_FILE):
            with contextlib.suppress(FileNotFoundError):
                (self.home / name).unlink()
        server.shutdown()
        server.server_close()
        log("stopped")
        return 0


class _ControlServer(ThreadingHTTPServer):
    def __init__(self, addr: tuple[str, int], handler: type[BaseHTTPRequestHandler], sup: Supervisor) -> None:
        self.supervisor = sup
        super().__init__(addr, handler)


class _BadRequestError(Exception):
    pass


class _ControlHandler(BaseHTTPRequestHandler):
    server: _ControlServer

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        sup = self.server.supervisor
        path = self.path.split("?", 1)[0]
        try:
            if method == "GET" and path == "/status":
                pass
            elif method == "PUT" and path == "/autorestart":
                enabled = self._body().get("enabled")
                if not isinstance(enabled, bool):
                    raise _BadRequestError('body must be {"enabled": true|false}')
                sup.set_autorestart(enabled)
            elif path.startswith("/annotations/") and method in ("PUT", "DELETE"):
                key = urllib.parse.unquote(path[len("/annotations/") :])
                if not key:
                    raise _BadRequestError("empty annotation key")
                if method == "PUT":
                    value = self._body().get("value")
                    if not isinstance(value, str):
                        raise _BadRequestError('body must be {"value": "<string>"}')
                    sup.set_annotation(key, value)
                elif not sup.delete_annotation(key):
                    self._reply(404, {"error": f"no annotation {key!r}"})
                    return
            elif method == "POST" and path == "/restart":
                sup.restart()
            elif method == "POST" and path == "/stop":
                sup.stop_service()
                self._reply(200, sup.status())
                sup.request_exit()
                return
            else:
                self._reply(404, {"error": f"no such endpoint: {method} {path}"})
                return
        except _BadRequestError as exc:
            self._reply(400, {"error": str(exc)})
            return
        except Exception as exc:  # report, don't kill the handler thread silently
            log(f"error handling {method} {path}: {exc!r}")
            self._reply(500, {"error": repr(exc)})
            return
        self._reply(200, sup.status())

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            data = json.loads(self.rfile.read(length) or b"null")
        except ValueError as exc:
            raise _BadRequestError(f"invalid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise _BadRequestError("body must be a JSON object")
        return data

    def _reply(self, code: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass  # every state change is already logged as an event; request lines would drown them


def _daemonize() -> None:
    # The starter waits for this first process, exiting at once; the child (adopted by init) is the daemon.
    if os.fork() > 0:
        os._exit(0)
    os.setsid()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="drill sandbox supervisor")
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--port", type=int, default=0, help="service port; 0 = pick once and persist")
    parser.add_argument("--restart-delay", type=float, default=0.5, dest="restart_delay_s")
    parser.add_argument("--daemonize", action="store_true", help="fork into the background (used by start)")
    args = parser.parse_args(argv)
    home: Path = args.home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    if args.daemonize:
        _daemonize()
    # One supervisor per home: a lock held for the process lifetime (the kernel releases it on death).
    lock = (home / "supervisor.lock").open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        log(f"another supervisor already owns {home}; exiting")
        return 1
    try:
        return Supervisor(home, args.port, args.restart_delay_s).run()
    except Exception as exc:
        log(f"fatal: {exc!r}")
        return 1
    finally:
        lock.close()


if __name__ == "__main__":
    sys.exit(main())
