"""A real uvicorn server on 127.0.0.1 (a free port) in a thread, and a projection runner.

Tests talk to it with httpx over TCP, exactly as clients do.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn
from litestar import Litestar

from adapters.http.app import HttpParts, create_app
from adapters.http.server import ApiServer, bound_address
from adapters.service.bootstrap import Container
from projections.queries.lag import HoldsBack
from projections.registry import VIEWS
from projections.runner import Runner


@dataclass
class RunningApi:
    parts: HttpParts
    app: Litestar
    base_url: str


@contextmanager
def serve_in_thread(parts: HttpParts, host: str = "127.0.0.1") -> Iterator[RunningApi]:
    """Serve the API over ``parts`` on a free port until the block ends."""
    app = create_app(parts)
    config = uvicorn.Config(
        app, host=host, port=0, lifespan="on", log_level="warning", access_log=False
    )
    server = ApiServer(config)
    thread = threading.Thread(target=server.run, name="test-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    bound_host, port = bound_address(server)
    try:
        yield RunningApi(parts, app, f"http://{bound_host}:{port}")
    finally:
        server.should_exit = True
        thread.join(30)


@contextmanager
def projections_running(container: Container, poll: float = 0.05) -> Iterator[None]:
    """Feed every view from the log in a thread until the block ends."""
    stop = threading.Event()

    def run() -> None:
        store = container.backend.open_views()
        try:
            Runner(store, list(VIEWS.values())).run(stop, poll_interval=poll)
        finally:
            store.close()

    thread = threading.Thread(target=run, name="test-projections", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(30)


def wait_for(predicate: object, timeout: float = 10.0, interval: float = 0.05) -> None:
    """Poll ``predicate()`` until it is true (AssertionError after ``timeout``)."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {predicate!r}")
        time.sleep(interval)


def settled_head(running: RunningApi) -> int:
    """The head once every committed event is below it. On PostgreSQL a reader's head is
    the settled head (ADR 150): a transaction that took its id before the test's last
    append (such as a view runner's, writing the enqueue's rows) holds that append back
    until it commits, so a head read right after a write can move by that write's own
    event later, and views "at the head" may not have it yet."""
    wait_for(lambda: running.parts.views.use(
        lambda store: not isinstance(store, HoldsBack) or store.held_back() == 0
    ))
    return int(running.parts.views.use(lambda store: store.head()))
