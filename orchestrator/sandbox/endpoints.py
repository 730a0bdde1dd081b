"""The supervisor's control API: HTTP on a loopback port, JSON in and out.

- ``GET /status``: the status (every 200 reply below carries it too).
- ``PUT /autorestart {"enabled": bool, "guard"?: {"key", "run_id"}}``: set it; with a guard, only while that
  run's marker is on the key.
- ``POST /claim {"key", "marker": {"run_id", ...}}``: write the marker with the current value as its
  ``original``, in one step; the reply's ``claim`` holds ``original`` and the stored ``marker``.
- ``POST /release {"key", "run_id", "autorestart", "instance"?}``: put the value back and delete that run's
  marker, in one step; ``released`` is false when no marker was there (nothing touched).
- ``PUT|DELETE /annotations/KEY {"value": str}``: set / delete an annotation (404 when absent).
- ``POST /restart``, ``POST /stop``: manual restart of the service; stop the service and the supervisor.

400 is a malformed request, 404 an unknown endpoint, 409 a refusal with ``holder`` (the run id whose marker is on
the key, "" when none) or ``instance`` (this supervisor's, when the caller claimed another), 500 a bug (logged).
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol


class ConflictError(Exception):
    """A marker-guarded operation was refused: the marker on the key is not the caller's."""

    def __init__(self, message: str, *, holder: str) -> None:
        super().__init__(message)
        self.holder = holder  # the run id whose marker is there; "" when there is none (or it is not a marker)


class InstanceMismatchError(Exception):
    """A release named the instance it claimed, and this supervisor is another one."""

    def __init__(self, message: str, *, instance: str) -> None:
        super().__init__(message)
        self.instance = instance


class Operations(Protocol):
    """What the endpoints call: the supervisor (each method takes its lock)."""

    def status(self) -> dict[str, object]: ...
    def set_autorestart(self, enabled: bool, *, guard: tuple[str, str] | None = None) -> None: ...
    def claim(self, key: str, marker: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]: ...
    def release(self, key: str, *, run_id: str, autorestart: bool, instance: str) -> bool: ...
    def set_annotation(self, key: str, value: str) -> None: ...
    def delete_annotation(self, key: str) -> bool: ...
    def restart(self) -> None: ...
    def stop_service(self) -> None: ...
    def request_exit(self) -> None: ...


def _log(msg: str) -> None:
    sys.stderr.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} supervisor[{os.getpid()}] {msg}\n")
    sys.stderr.flush()


class ControlServer(ThreadingHTTPServer):
    """The control API on a loopback port, answering for one supervisor."""

    def __init__(self, addr: tuple[str, int], sup: Operations) -> None:
        self.supervisor = sup
        super().__init__(addr, _ControlHandler)


class _BadRequestError(Exception):
    pass


def _str(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise _BadRequestError(f"{name} must be a non-empty string")
    return value


class _ControlHandler(BaseHTTPRequestHandler):
    server: ControlServer

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
                body = self._body()
                enabled = body.get("enabled")
                if not isinstance(enabled, bool):
                    raise _BadRequestError('body must be {"enabled": true|false}')
                guard = body.get("guard")
                if guard is None:
                    sup.set_autorestart(enabled)
                else:
                    if not isinstance(guard, dict):
                        raise _BadRequestError('guard must be {"key": "<str>", "run_id": "<str>"}')
                    sup.set_autorestart(enabled, guard=(_str(guard, "key"), _str(guard, "run_id")))
            elif method == "POST" and path == "/claim":
                body = self._body()
                marker = body.get("marker")
                if not isinstance(marker, dict):
                    raise _BadRequestError('body must be {"key": "<str>", "marker": {"run_id": "<str>", ...}}')
                _str(marker, "run_id")
                original, stored = sup.claim(_str(body, "key"), marker)
                self._reply(200, {**sup.status(), "claim": {"original": original, "marker": stored}})
                return
            elif method == "POST" and path == "/release":
                body = self._body()
                autorestart = body.get("autorestart")
                if not isinstance(autorestart, bool):
                    raise _BadRequestError("autorestart must be true or false")
                instance = body.get("instance", "")
                if not isinstance(instance, str):
                    raise _BadRequestError("instance must be a string")
                released = sup.release(
                    _str(body, "key"), run_id=_str(body, "run_id"), autorestart=autorestart, instance=instance
                )
                self._reply(200, {**sup.status(), "released": released})
                return
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
        except ConflictError as exc:
            self._reply(409, {"error": str(exc), "holder": exc.holder})
            return
        except InstanceMismatchError as exc:
            self._reply(409, {"error": str(exc), "instance": exc.instance})
            return
        except Exception as exc:  # report, don't kill the handler thread silently
            _log(f"error handling {method} {path}: {exc!r}")
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
