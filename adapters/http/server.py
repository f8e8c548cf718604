"""Serving: the API on uvicorn, as one part of a service run in one anyio task group.

``ledger serve`` starts its parts with ``tg.start()`` (each says when it is up): the API
here, and the projection runner and the policies' monitors as they are added
(:data:`Part`). SIGINT/SIGTERM ask the API to finish its requests and stop; when the API
has stopped, the other parts are cancelled and the shutdown work of each (shielded) runs.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import signal
import socket
import sys
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from typing import Any

import anyio
import uvicorn
from anyio.abc import TaskStatus
from litestar import Litestar
from uvicorn.config import LOGGING_CONFIG

from adapters.http.process_info import process_of
from adapters.tracing.logs import json_logging

log = logging.getLogger(__name__)

SWITCH_INTERVAL_SECONDS = 0.0005
GC_THRESHOLDS = (10_000, 10, 1_000)
REPEAT_SECONDS = 1.0
"""A signal repeated within this long is the same request to stop."""
KEEP_ALIVE_SECONDS = 75
"""How long an idle keep-alive connection stays open (uvicorn's default is 5 s): longer
than a worker's heartbeat interval (at most 30 s), so a worker keeps its connection, and
with ``--processes N`` its jobs stay with the process whose cache holds them (ADR 181)."""
SERVED_BY = "X-Served-By"
"""The header naming the API process that answered by its opaque id (``--processes N``
only; ADR 180)."""

Part = Callable[..., Coroutine[Any, Any, Any]]
"""A part of the service: ``async def part(*, task_status)`` that calls
``task_status.started()`` once it is up and runs until cancelled."""


def tune_for_serving() -> None:
    """Process settings that keep the event loop responsive under load (call once the
    application is built; ``jobledger_gc_pause_seconds`` in /metrics shows the effect).

    - The batch writer's thread decides and encodes whole batches in Python; with the
      default 5 ms GIL switch interval the event loop waits up to 5 ms at each of its I/O
      points behind it. 0.5 ms keeps /health answering in a few milliseconds.
    - The ledger keeps thousands of jobs in its cache and copies one per command, so the
      default thresholds run full (generation 2) collections every few seconds under load,
      each stopping every thread for 100-250 ms. Objects alive after start-up are frozen
      out of collection, the young generation is larger, and full collections are rare.
    """
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


class ApiServer(uvicorn.Server):
    """uvicorn without its own signal handling (the service handles signals once)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bound_address(server: uvicorn.Server) -> tuple[str, int]:
    """Where the server listens (the real port when asked for port 0)."""
    for listener in server.servers:
        for sock in listener.sockets:
            host, port = sock.getsockname()[:2]
            return str(host), int(port)
    raise RuntimeError("the server is not listening")


async def run_api(
    app: Litestar,
    host: str,
    port: int,
    *,
    log_level: str = "warning",
    sock: socket.socket | None = None,
    task_status: TaskStatus[uvicorn.Server] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` until asked to stop (``server.should_exit``) or cancelled; on
    ``sock`` (a listening socket shared by several processes) instead of binding
    ``host:port``."""
    config = uvicorn.Config(
        app, host=host, port=port, lifespan="on", log_level=log_level, access_log=False,
        server_header=False, proxy_headers=True, timeout_graceful_shutdown=10,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        backlog=2048, log_config=None if json_logging() else LOGGING_CONFIG,  # ADR 125
        headers=[] if sock is None else [(SERVED_BY, process_of().id)],
    )
    server = ApiServer(config)
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve, None if sock is None else [sock])
        while not server.started:
            if server.should_exit:
                raise RuntimeError(f"the API could not start on {host}:{port}")
            await anyio.sleep(0.02)
        task_status.started(server)
    if not server.started:
        raise RuntimeError(f"the API stopped before it served on {host}:{port}")


async def serve(
    app: Litestar,
    host: str,
    port: int,
    *,
    parts: Sequence[Part] = (),
    on_started: Callable[[str, int], None] | None = None,
    log_level: str = "warning",
    sock: socket.socket | None = None,
) -> None:
    """Run the API and ``parts`` until SIGINT or SIGTERM (on ``sock`` when given)."""
    async with anyio.create_task_group() as tg:
        for part in parts:
            await tg.start(part)
        server: uvicorn.Server | None = None

        async def api(*, task_status: TaskStatus[uvicorn.Server]) -> None:
            await run_api(app, host, port, log_level=log_level, sock=sock,
                          task_status=task_status)
            tg.cancel_scope.cancel()  # the API has stopped: so does everything else

        server = await tg.start(api)
        if on_started is not None:
            on_started(*bound_address(server))
        tg.start_soon(_stop_on_signals, server)


async def _stop_on_signals(server: uvicorn.Server) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        first = 0.0
        async for received in signals:
            if server.should_exit:
                if time.monotonic() - first < REPEAT_SECONDS:
                    continue  # the same stop said twice (a parent's death signal repeats)
                server.force_exit = True  # a second signal: do not wait for requests
            else:
                first = time.monotonic()
            log.warning("received %s: stopping", signal.Signals(received).name)
            server.should_exit = True
