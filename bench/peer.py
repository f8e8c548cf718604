"""The peer the benchmark compares with: Procrastinate (a PostgreSQL task queue) on the
same server, in a database of its own, with one no-op task."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import multiprocessing.synchronize
from typing import Any

import psycopg
from procrastinate import App, PsycopgConnector

TASK = "noop"
SUCCEEDED = "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'"
COUNT_JOBS = "SELECT count(*) FROM procrastinate_jobs"


def noop(**_: Any) -> None:
    """The task: does nothing."""


def make_app(url: str, pool_size: int = 4) -> App:
    connector = PsycopgConnector(conninfo=url, min_size=1, max_size=max(1, pool_size))
    app = App(connector=connector)
    app.task(name=TASK)(noop)
    return app


def apply_schema(url: str) -> None:
    async def run() -> None:
        app = make_app(url, 1)
        async with app.open_async():
            await app.schema_manager.apply_schema_async()

    asyncio.run(run())


def count(url: str, query: str = SUCCEEDED) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(query).fetchone()
        return int(row[0]) if row else 0


def succeeded(conn: psycopg.Connection[Any]) -> int:
    """Jobs that succeeded, counted on an open connection (the benchmark's poll)."""
    row = conn.execute(SUCCEEDED).fetchone()
    return int(row[0]) if row else 0


def worker_process(
    url: str, concurrency: int, ready: multiprocessing.synchronize.Barrier, seconds: float
) -> None:
    """A Procrastinate worker (a process of its own): opens the app, waits at ``ready``
    for the others, then runs the no-op jobs until the queue is empty (or ``seconds``)."""

    async def run() -> None:
        app = make_app(url, concurrency + 2)
        async with app.open_async():
            await app.check_connection_async()
            ready.wait(120)
            await asyncio.wait_for(
                app.run_worker_async(
                    concurrency=concurrency, wait=False, install_signal_handlers=False,
                    listen_notify=False, delete_jobs="never",
                ),
                timeout=seconds,
            )

    with contextlib.suppress(TimeoutError):
        asyncio.run(run())
