"""The server's own time for each request (issue 15: the bar is the server time's p95),
measured around the ASGI app: from the request's arrival at the app to the last byte of
its response handed to the server. The client's time (``bench.console``) adds the
loopback round trip and the client's own work, in the same process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from adapters.http.app import HttpParts, create_app
from adapters.http.server import ApiServer, bound_address

Scope = dict[str, Any]
Message = dict[str, Any]


class ServerTimes:
    """An ASGI wrapper recording each HTTP request's seconds in the app, in order."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seconds: list[float] = []

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()

        async def timed_send(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self.seconds.append(time.perf_counter() - began)

        await self.app(scope, receive, timed_send)

    def take(self) -> list[float]:
        """The times recorded since the last take, in the order the requests ended."""
        taken, self.seconds = self.seconds, []
        return taken


@contextmanager
def serve_timed(parts: HttpParts) -> Iterator[tuple[str, ServerTimes]]:
    """The API over ``parts`` on 127.0.0.1 (a free port) in a thread, as
    ``tests.support.http.serve_in_thread`` serves it, timed: its URL and its times."""
    times = ServerTimes(create_app(parts))
    config = uvicorn.Config(times, host="127.0.0.1", port=0, lifespan="on",
                            log_level="warning", access_log=False)
    server = ApiServer(config)
    thread = threading.Thread(target=server.run, name="bench-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the bench's server did not start")
        time.sleep(0.01)
    host, port = bound_address(server)
    try:
        yield f"http://{host}:{port}", times
    finally:
        server.should_exit = True
        thread.join(30)
