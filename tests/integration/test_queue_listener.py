"""On PostgreSQL an idle receiver of the local queue wakes when another process appends
a job to the log (the outbox writes its message, the append's NOTIFY follows), not when
its poll interval is over; its listening connection comes back after it was killed
(ADR 210). A message another process sends straight to the queue (the dispatcher's: a
retry, a paused queue's jobs) wakes it too, through the queue's own channel."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from uuid import uuid4

import anyio
import psycopg
import pytest

from adapters.local_queue.queue import LocalQueue
from adapters.postgres.backend import PostgresBackend
from adapters.service.bootstrap import Container, build, utc_now
from adapters.service.settings import Settings
from ledger.commands import EnqueueJob
from ledger.ports.transport import JobMessage
from tests.support.http import wait_for

pytestmark = pytest.mark.postgres

POLL = 60.0
"""The receiver's poll interval: far longer than any wait the tests allow."""


@pytest.fixture
def container(postgres_url: str, tmp_path: Path) -> Iterator[Container]:
    wired = build(Settings(ledger_data_dir=tmp_path / "data", database_url=postgres_url))
    yield wired
    wired.close()


def listener_backends(url: str) -> list[int]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND query LIKE 'LISTEN %%' AND pid <> pg_backend_pid()"
        ).fetchall()
    return [int(r[0]) for r in rows]


async def received_after_an_enqueue(queue: LocalQueue, container: Container) -> float:
    """:func:`received_after` an enqueue through the other ledger."""

    async def enqueue() -> None:
        container.ledger.execute(EnqueueJob(customer_id="acme"), utc_now())

    return await received_after(queue, enqueue)


async def received_after(queue: LocalQueue, write: Callable[[], Awaitable[None]]) -> float:
    """Start a long poll, wait until its queue listens, call ``write`` (another process's
    write, as far as the queue can tell) and return the seconds until a message came."""
    got: list[object] = []
    arrived: list[float] = []

    async def receive() -> None:
        got.extend(await queue.receive(max_messages=1, wait_seconds=20))
        arrived.append(time.monotonic())

    async with anyio.create_task_group() as tg:
        tg.start_soon(receive)
        with anyio.fail_after(10):
            while queue._listener is None or not queue._listener.listening.is_set():  # type: ignore[attr-defined]
                await anyio.sleep(0.01)
        started = time.monotonic()
        await write()
    assert got, "the long poll ended without the message"
    return arrived[0] - started


def test_an_idle_receiver_wakes_on_another_ledgers_enqueue(
    postgres_url: str, container: Container
) -> None:
    queue = LocalQueue(PostgresBackend(postgres_url).queue_store(), poll_interval=POLL)

    async def main() -> float:
        try:
            return await received_after_an_enqueue(queue, container)
        finally:
            await queue.aclose()

    assert anyio.run(main) < 5.0  # the poll would take 60 s
    wait_for(lambda: not listener_backends(postgres_url), timeout=10)  # closed with the queue


def test_the_listener_comes_back_after_its_connection_is_killed(
    postgres_url: str, container: Container
) -> None:
    queue = LocalQueue(PostgresBackend(postgres_url).queue_store(), poll_interval=POLL)

    async def main() -> float:
        try:
            await received_after_an_enqueue(queue, container)
            (pid,) = listener_backends(postgres_url)
            with psycopg.connect(postgres_url, autocommit=True) as conn:
                conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
            with anyio.fail_after(10):
                while listener_backends(postgres_url) in ([], [pid]):
                    await anyio.sleep(0.05)
            return await received_after_an_enqueue(queue, container)
        finally:
            await queue.aclose()

    assert anyio.run(main) < 5.0


def test_a_send_from_another_queue_wakes_an_idle_receiver(postgres_url: str) -> None:
    backend = PostgresBackend(postgres_url)
    backend.migrate()
    queue = LocalQueue(backend.queue_store(), poll_interval=POLL)
    other = LocalQueue(backend.queue_store())  # as the dispatcher of `ledger serve`

    async def send() -> None:
        await other.send(JobMessage(job_id=uuid4(), attempt=0, customer_id="c", dedup_key="k"))

    async def main() -> float:
        try:
            return await received_after(queue, send)
        finally:
            await queue.aclose()
            await other.aclose()

    assert anyio.run(main) < 5.0
