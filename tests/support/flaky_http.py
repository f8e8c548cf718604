"""A tiny real HTTP server on 127.0.0.1 that fails the first ``failures`` requests with
a status (503 by default) and then answers each with a fixed body; it counts requests."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Flaky:
    failures: int
    body: bytes
    status: int = 200
    fail_status: int = 503
    fail_body: bytes = b'{"status": 503, "detail": "down", "code": "database_unavailable"}'
    headers: dict[str, str] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, line: str) -> tuple[int, bytes]:
        with self.lock:
            self.requests.append(line)
            failing = len(self.requests) <= self.failures
        return (self.fail_status, self.fail_body) if failing else (self.status, self.body)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def flaky_server(flaky: Flaky, port: int = 0) -> Iterator[str]:
    """Serve ``flaky`` until the block ends; yields the base URL."""

    class Handler(BaseHTTPRequestHandler):
        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            status, body = flaky.answer(f"{self.command} {self.path}")
            self.send_response(status)
            self.send_header("Content-Type", "application/problem+json" if status >= 400
                             else "application/json")
            for name, value in flaky.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _any

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
