"""The local sandbox with real processes: a supervisor daemon, its service child, and the control client."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.processes import is_process_alive
from orchestrator.sandbox import chaos
from orchestrator.sandbox.control import (
    SandboxClient,
    SandboxError,
    SandboxStatus,
    SandboxUnreachable,
    start_sandbox,
    stop_sandbox,
)
from tests.conftest import wait_for

DELAY_S = 0.2  # short restart delay keeps the suite fast; the logic does not depend on its value
WAIT_S = 10.0


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "sandbox"
    yield home
    stop_sandbox(home)  # every test that started a supervisor leaves none behind


@pytest.fixture
def client(home: Path) -> SandboxClient:
    start_sandbox(home, restart_delay_s=DELAY_S)
    return SandboxClient(home)


def _down(s: SandboxStatus) -> bool:
    return not s.service.running


def test_start_is_healthy_and_idempotent(home: Path) -> None:
    first = start_sandbox(home, restart_delay_s=DELAY_S)
    client = SandboxClient(home)
    assert client.healthy()
    assert first.autorestart is True
    assert first.service.running and first.service.restarts == 0
    assert first.url == f"http://127.0.0.1:{first.service_port}"
    second = start_sandbox(home, restart_delay_s=DELAY_S)
    assert second.supervisor_pid == first.supervisor_pid
    assert second.service.pid == first.service.pid
    info = json.loads((home / "supervisor.json").read_text())
    assert info["pid"] == first.supervisor_pid and info["service_port"] == first.service_port
    assert json.loads((home / "service.pid").read_text()) == first.service.pid


def test_autorestart_brings_a_killed_service_back(client: SandboxClient) -> None:
    killed = client.kill_service()
    st = client.wait_until(lambda s: s.service.running and s.service.pid != killed, timeout_s=WAIT_S)
    client.wait_healthy(timeout_s=WAIT_S)
    assert st.service.restarts == 1
    assert st.service.last_exit_code == -9
    assert st.service.last_exit_at is not None


def test_suspended_autorestart_leaves_service_down_until_mitigated(client: SandboxClient) -> None:
    assert client.set_autorestart(False).autorestart is False
    client.kill_service()
    client.wait_until(_down, timeout_s=WAIT_S)
    # The assertion is this wait: a few restart delays pass and nothing brings the service back.
    with pytest.raises(SandboxError, match="timed out"):
        client.wait_until(lambda s: s.service.running, timeout_s=DELAY_S * 4)
    assert not client.healthy()
    with pytest.raises(SandboxError, match="not running"):
        client.kill_service()

    # The human's mitigation: a manual restart, which is not an automatic one.
    st = client.restart_service()
    assert st.service.running and st.service.restarts == 0
    client.wait_healthy(timeout_s=WAIT_S)

    # Restoring the policy while the service is down brings it back by itself.
    client.kill_service()
    client.wait_until(_down, timeout_s=WAIT_S)
    client.set_autorestart(True)
    st = client.wait_until(lambda s: s.service.running, timeout_s=WAIT_S)
    assert st.service.restarts == 1
    client.wait_healthy(timeout_s=WAIT_S)


def test_restart_replaces_a_running_service(client: SandboxClient) -> None:
    before = client.status().service.pid
    st = client.restart_service()
    assert st.service.pid != before and st.service.running
    assert before is not None and not is_process_alive(before)
    client.wait_healthy(timeout_s=WAIT_S)


def test_state_survives_a_supervisor_restart(home: Path, client: SandboxClient) -> None:
    key = "drill.dev/suspension"
    port = client.status().service_port
    instance = client.status().instance
    assert instance
    client.set_annotation(key, '{"run": "r1"}')
    client.set_annotation("other.key", "v")
    client.delete_annotation("other.key")
    client.delete_annotation("never-set")  # idempotent
    client.set_autorestart(False)
    assert stop_sandbox(home) is True
    assert not (home / "supervisor.json").exists()
    assert stop_sandbox(home) is False
    saved = json.loads((home / "state.json").read_text())
    assert saved == {
        "autorestart": False,
        "annotations": {key: '{"run": "r1"}'},
        "service_port": port,
        "instance": instance,
    }

    st = start_sandbox(home, restart_delay_s=DELAY_S)
    assert st.autorestart is False
    assert dict(st.annotations) == {key: '{"run": "r1"}'}
    assert st.service_port == port  # port 0 was resolved once and persisted
    assert st.instance == instance  # the same state is the same object, whichever process serves it
    assert dict(client.delete_annotation(key).annotations) == {}


def test_unreachable_without_supervisor(tmp_path: Path) -> None:
    client = SandboxClient(tmp_path)
    with pytest.raises(SandboxUnreachable, match="drill sandbox start"):
        client.status()
    assert client.healthy() is False
    # A supervisor.json left by a dead process is stale, not a live sandbox.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True)
    (tmp_path / "supervisor.json").write_text(
        json.dumps({"pid": int(dead.stdout), "control_port": 1, "service_port": 1, "started_at": 0.0})
    )
    with pytest.raises(SandboxUnreachable, match="drill sandbox start"):
        client.status()
    assert stop_sandbox(tmp_path) is False


def test_control_api_rejects_bad_requests(home: Path, client: SandboxClient) -> None:
    port = json.loads((home / "supervisor.json").read_text())["control_port"]

    def call(method: str, path: str, body: bytes | None = None) -> tuple[int, dict[str, object]]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
        try:
            conn.request(method, path, body=body)
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read())
        finally:
            conn.close()

    assert call("PUT", "/autorestart", b"{not json")[0] == 400
    assert call("PUT", "/autorestart", b'{"enabled": "yes"}')[0] == 400
    assert call("PUT", "/annotations/k", b'{"value": 1}')[0] == 400
    assert call("GET", "/nope")[0] == 404
    code, body = call("DELETE", "/annotations/absent")
    assert code == 404 and "error" in body
    assert call("POST", "/claim", b'{"key": "k"}')[0] == 400
    assert call("POST", "/claim", b'{"key": "k", "marker": {"run_id": ""}}')[0] == 400
    assert call("POST", "/release", b'{"key": "k", "run_id": "r", "autorestart": "on"}')[0] == 400
    assert call("PUT", "/autorestart", b'{"enabled": false, "guard": "r"}')[0] == 400
    code, body = call("PUT", "/autorestart", b'{"enabled": false, "guard": {"key": "k", "run_id": "r"}}')
    assert code == 409 and body["holder"] == ""  # no marker of run r: nothing suspended
    assert call("POST", "/claim", b'{"key": "k", "marker": {"run_id": "r"}}')[0] == 200
    code, body = call("POST", "/claim", b'{"key": "k", "marker": {"run_id": "s"}}')
    assert code == 409 and body["holder"] == "r"
    code, body = call("POST", "/release", b'{"key": "k", "run_id": "r", "autorestart": true, "instance": "nope"}')
    assert code == 409 and body["instance"] == client.status().instance
    assert client.status().autorestart is True


def test_chaos_provider_functions(home: Path, client: SandboxClient) -> None:
    h = str(home)
    assert chaos.service_healthy(h) is True
    assert chaos.ensure_service_running(h) == {"restarted": False}
    client.set_autorestart(False)
    pid = client.status().service.pid
    assert chaos.kill_service(h) == {"killed_pid": pid}
    assert client.wait_until(_down, timeout_s=WAIT_S).service.last_exit_code == -9
    assert chaos.service_healthy(h) is False
    with pytest.raises(SandboxError):
        chaos.kill_service(h)
    assert chaos.ensure_service_running(h, timeout="10") == {"restarted": True}  # type: ignore[arg-type]
    assert chaos.service_healthy(h) is True


def _wait_dead(pid: int) -> None:
    wait_for(lambda: not is_process_alive(pid), timeout_s=WAIT_S, what=f"pid {pid} to exit")


def test_sigterm_stops_cleanly_and_sigkill_leaves_no_stuck_port(home: Path, client: SandboxClient) -> None:
    st = client.status()
    os.kill(st.supervisor_pid, signal.SIGTERM)  # handled like POST /stop
    _wait_dead(st.supervisor_pid)
    assert st.service.pid is not None and not is_process_alive(st.service.pid)
    assert not (home / "supervisor.json").exists()

    # A supervisor killed outright orphans its service, which holds the port; the next start reclaims it.
    st = start_sandbox(home, restart_delay_s=DELAY_S)
    os.kill(st.supervisor_pid, signal.SIGKILL)
    _wait_dead(st.supervisor_pid)
    assert st.service.pid is not None and is_process_alive(st.service.pid)
    with pytest.raises(SandboxUnreachable):
        client.status()
    again = start_sandbox(home, restart_delay_s=DELAY_S)
    assert again.service_port == st.service_port and again.service.pid != st.service.pid
    assert not is_process_alive(st.service.pid)
    client.wait_healthy(timeout_s=WAIT_S)
