"""The sandbox service: a minimal HTTP server whose only job is to be up, or not.

Run as ``python -m orchestrator.sandbox.service --port P``. The supervisor owns its lifecycle.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType

STARTED_AT = time.time()


class _Handler(BaseHTTPRequestHandler):
    server_version = "drill-sandbox/1"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            self._reply(200, {"status": "ok", "pid": os.getpid(), "started_at": STARTED_AT})
        elif path == "/":
            self._reply(200, {"service": "drill-sandbox", "pid": os.getpid()})
        else:
            self._reply(404, {"error": f"no such path: {path}"})

    def _reply(self, code: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # Health checks are polled constantly; only failures are worth a line in service.log.
        if isinstance(code, int) and code < 400:
            return
        super().log_request(code, size)

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(f"service[{os.getpid()}] {self.address_string()} {format % args}\n")


def serve(port: int) -> None:
    # allow_reuse_address (SO_REUSEADDR) is on for ThreadingHTTPServer: a restart rebinds despite TIME_WAIT.
    server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)

    def on_term(signum: int, _frame: FrameType | None) -> None:
        # shutdown() blocks until serve_forever returns, so it must not run on the serving (main) thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    sys.stderr.write(f"service[{os.getpid()}] listening on 127.0.0.1:{server.server_address[1]}\n")
    sys.stderr.flush()
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    sys.stderr.write(f"service[{os.getpid()}] stopped\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="drill sandbox service")
    parser.add_argument("--port", type=int, required=True)
    serve(parser.parse_args(argv).port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
