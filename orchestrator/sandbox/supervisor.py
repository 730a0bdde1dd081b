"""The sandbox supervisor: keeps the service running while auto-restart (the drill's policy) is on.

Run as ``python -m orchestrator.sandbox.supervisor --home H --port P [--restart-delay S] [--daemonize]``.
All durable state lives in ``H/state.json`` so a suspension (autorestart off + marker annotation) survives a
crash or restart of the supervisor itself; it is written before any reply that reports it.

One supervisor per home, whatever happens to the folder: the lock is an abstract unix socket named after the
home (``homelock.py``), which no ``rm -rf`` can take away, and the supervisor re-creates its
files (state, pid, ports) within ``FILES_CHECK_S`` when they vanish or are overwritten: it owns them.

The ``instance`` id (random, made when a home's state is first created, then kept in ``state.json``) names the
object a drill suspends: a restarted supervisor that loaded the same state is the same object, a supervisor
that started on an empty folder is a different one, and restore refuses to verify against it.

Drill markers are annotations whose value is a JSON object with a ``run_id``. Three operations check them
under the same lock as the value they guard, so claiming and reading the prior value are one step:
``POST /claim`` (refused with 409 and the ``holder`` when another run's marker is there), ``PUT /autorestart``
with a ``guard`` (applies only while that run's marker is there) and ``POST /release`` (puts the original
back and deletes the marker, only when the marker is that run's).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

from orchestrator import processes
from orchestrator.sandbox import endpoints, homelock
from orchestrator.sandbox.control import STATE_FILE, SUPERVISOR_FILE, SUPERVISOR_LOG
from orchestrator.sandbox.endpoints import ConflictError, InstanceMismatchError

SERVICE_PID_FILE = "service.pid"
SERVICE_LOG = "service.log"
STOP_GRACE_S = 3.0
FILES_CHECK_S = 0.5  # how soon vanished or overwritten files are re-created: "within a second or two"
_POLL_S = 0.05


def log(msg: str) -> None:
    sys.stderr.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} supervisor[{os.getpid()}] {msg}\n")
    sys.stderr.flush()


def atomic_write_json(path: Path, data: object) -> None:
    """Write-then-rename with fsyncs: a crash leaves the old or the new file, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)  # the home may have been deleted under a running supervisor
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


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def marker_run_id(text: str) -> str | None:
    """The run id of a drill marker annotation, or None when the value is not one."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    run_id = data.get("run_id") if isinstance(data, dict) else None
    return run_id if isinstance(run_id, str) and run_id else None


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
        self._info: dict[str, object] | None = None  # supervisor.json as this process wrote it (set by run)
        state = self._load_state()
        self.instance: str = str(state.get("instance") or secrets.token_hex(8))
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

    def _state(self) -> dict[str, object]:
        return {
            "autorestart": self.autorestart,
            "annotations": dict(self.annotations),
            "service_port": self.service_port,
            "instance": self.instance,
        }

    def _save_state(self) -> None:
        atomic_write_json(self.home / STATE_FILE, self._state())

    def _ensure_files_locked(self) -> None:
        """Re-create state, pid and port files that vanished or were overwritten (the folder deleted mid-run)."""
        if self._info is None:
            return  # not started yet: run() writes them
        recreated: list[str] = []
        if _read_json(self.home / STATE_FILE) != self._state():
            self._save_state()
            recreated.append(STATE_FILE)
        if _read_json(self.home / SUPERVISOR_FILE) != self._info:
            atomic_write_json(self.home / SUPERVISOR_FILE, self._info)
            recreated.append(SUPERVISOR_FILE)
        if self._proc is not None and _read_json(self.home / SERVICE_PID_FILE) != self._proc.pid:
            atomic_write_json(self.home / SERVICE_PID_FILE, self._proc.pid)
            recreated.append(SERVICE_PID_FILE)
        if recreated:
            _reopen_log_if_deleted(self.home / SUPERVISOR_LOG)
            log(f"re-created {', '.join(recreated)} in {self.home} (instance {self.instance})")

    # -- child process (call with the lock held) -----------------------------------------------------------
    def _spawn_locked(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
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
        files_due = time.monotonic() + FILES_CHECK_S
        while not self._exit.wait(_POLL_S):
            with self._lock:
                self._reap_locked()
                if time.monotonic() >= files_due:
                    files_due = time.monotonic() + FILES_CHECK_S
                    try:
                        self._ensure_files_locked()
                    except OSError as exc:  # e.g. the parent folder is not writable: keep supervising, retry
                        log(f"cannot re-create files in {self.home}: {exc}")

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
    def hello(self) -> dict[str, object]:
        """What the home lock answers: enough to reach this supervisor with no file at all."""
        info = self._info or {}
        return {"instance": self.instance, "home": str(self.home), "control_port": info.get("control_port")}

    def status(self) -> dict[str, object]:
        with self._lock:
            self._reap_locked()  # so a just-killed service never reads as running
            proc = self._proc
            return {
                "supervisor_pid": os.getpid(),
                "instance": self.instance,
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

    def set_autorestart(self, enabled: bool, *, guard: tuple[str, str] | None = None) -> None:
        """Set auto-restart; with ``guard=(key, run_id)`` only while that run's marker is on ``key``."""
        with self._lock:
            if guard is not None:
                key, run_id = guard
                holder = marker_run_id(self.annotations.get(key, "")) or ""
                if holder != run_id:
                    raise ConflictError(
                        f"no marker of run {run_id} on {key} (holder: {holder or 'none'}); auto-restart unchanged",
                        holder=holder,
                    )
            self._apply_autorestart_locked(enabled)
            log(f"autorestart={'on' if enabled else 'off'}" + (f" (run {guard[1]})" if guard else ""))

    def _apply_autorestart_locked(self, enabled: bool) -> None:
        previous = self.autorestart
        self.autorestart = enabled
        try:
            self._save_state()
        except BaseException:
            self.autorestart = previous  # never report (or act on) a value that is not durable
            raise
        if not enabled:
            self._restart_at = None  # a restart already pending must not fire once the policy is suspended
        elif self._proc is None and self._restart_at is None and not self._stopping:
            self._restart_at = time.monotonic() + self.restart_delay_s  # auto-restart means: bring it back

    def claim(self, key: str, marker: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Write ``marker`` on ``key`` with the current value as its original, in one step under the lock.

        Returns (original, stored marker). Refused when another run's marker (or a non-marker) is on ``key``;
        for the run that already holds it, returns what its own marker recorded (idempotent).
        """
        run_id = marker.get("run_id")
        if not isinstance(run_id, str) or not run_id:
            raise ValueError("marker.run_id must be a non-empty string")
        with self._lock:
            existing = self.annotations.get(key)
            if existing is not None:
                holder = marker_run_id(existing)
                if holder != run_id:
                    what = f"a marker of run {holder}" if holder else "an annotation that is not a drill marker"
                    raise ConflictError(f"{key} already carries {what}", holder=holder or "")
                held: dict[str, Any] = json.loads(existing)
                original = held.get("original")
                return (dict(original) if isinstance(original, dict) else {}), held
            original = {"autorestart": self.autorestart, "instance": self.instance}
            stored = {**marker, "original": original, "instance": self.instance}
            self.annotations[key] = json.dumps(stored, sort_keys=True)
            try:
                self._save_state()
            except BaseException:
                del self.annotations[key]
                raise
            log(f"claimed {key} for run {run_id} (original autorestart={'on' if original['autorestart'] else 'off'})")
            return original, stored

    def release(self, key: str, *, run_id: str, autorestart: bool, instance: str) -> bool:
        """Put ``autorestart`` back and delete ``key`` if it is ``run_id``'s marker, in one step.

        False (nothing touched) when no annotation is on ``key``; refused when another run's marker is there,
        or when ``instance`` (the one that was claimed) is not this supervisor.
        """
        with self._lock:
            if instance and instance != self.instance:
                raise InstanceMismatchError(
                    f"this supervisor is instance {self.instance}, not {instance} that run {run_id} claimed",
                    instance=self.instance,
                )
            existing = self.annotations.get(key)
            if existing is None:
                return False
            holder = marker_run_id(existing)
            if holder != run_id:
                raise ConflictError(
                    f"{key} carries a marker of run {holder or '(not a drill marker)'}, not {run_id}; left alone",
                    holder=holder or "",
                )
            previous = self.autorestart
            del self.annotations[key]
            try:
                self._apply_autorestart_locked(autorestart)
            except BaseException:
                self.annotations[key] = existing
                self.autorestart = previous
                raise
            log(f"released {key} of run {run_id}: autorestart={'on' if autorestart else 'off'}")
            return True

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
        server = endpoints.ControlServer(("127.0.0.1", 0), self)
        threading.Thread(target=server.serve_forever, name="control", daemon=True).start()
        control_port = int(server.server_address[1])
        with self._lock:
            self._spawn_locked()
        info: dict[str, object] = {
            "pid": os.getpid(),
            "control_port": control_port,
            "service_port": self.service_port,
            "started_at": time.time(),
            "instance": self.instance,
        }
        atomic_write_json(self.home / SUPERVISOR_FILE, info)
        with self._lock:
            self._info = info
        monitor = threading.Thread(target=self._monitor, name="monitor", daemon=True)
        monitor.start()
        log(
            f"ready instance={self.instance} control_port={control_port} service_port={self.service_port} "
            f"autorestart={self.autorestart}"
        )
        while not self._signalled and not self._exit.wait(0.1):
            pass
        log("stopping")
        self.stop_service()
        self._exit.set()
        monitor.join(timeout=5)
        self._info = None  # the monitor is gone; nothing re-creates the files removed below
        for name in (SUPERVISOR_FILE, SERVICE_PID_FILE):
            with contextlib.suppress(FileNotFoundError):
                (self.home / name).unlink()
        server.shutdown()
        server.server_close()
        log("stopped")
        return 0


def _reopen_log_if_deleted(path: Path) -> None:
    """Point stderr (the daemon's log) at a fresh ``supervisor.log`` when the file it wrote to was deleted."""
    try:
        st = os.fstat(2)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink > 0:
            return
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError:
        return
    os.dup2(fd, 2)
    os.close(fd)


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
    # Taken before forking, so a second supervisor for this home fails visibly (exit 1) to whoever started it.
    try:
        lock = homelock.HomeLock(home)
    except OSError:
        log(f"another supervisor already owns {home}; exiting")
        return 1
    if args.daemonize:
        _daemonize()
    try:
        supervisor = Supervisor(home, args.port, args.restart_delay_s)
        lock.hello = supervisor.hello
        lock.serve()
        return supervisor.run()
    except Exception as exc:
        log(f"fatal: {exc!r}")
        return 1
    finally:
        lock.close()


if __name__ == "__main__":
    sys.exit(main())
