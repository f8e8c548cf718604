"""What only the local queue does: receipts, durability, the dead-letter sweep, SKIP LOCKED."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from uuid import uuid4

import anyio
import psycopg
import pytest

from adapters.local_queue.queue import LocalQueue
from adapters.memory.queue import MemoryQueueStore
from adapters.postgres.local_queue import PostgresQueueStore
from adapters.postgres.migrate import migrate as migrate_postgres
from adapters.service.backend import backend_for
from adapters.service.bootstrap import build_transport
from adapters.service.settings import Settings
from adapters.sqlite.local_queue import SqliteQueueStore
from adapters.sqlite.migrate import migrate as migrate_sqlite
from ledger.errors import ReceiptInvalid
from ledger.ports.queue_store import QueueStore
from ledger.ports.transport import JobMessage, Received

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


StoreFactory = Callable[[], QueueStore]


@pytest.fixture(
    params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def new_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """Opens a store on the same queue database each time it is called."""
    if request.param == "memory":
        store = MemoryQueueStore()
        return lambda: store
    if request.param == "sqlite":
        path = tmp_path / "ledger.sqlite3"
        migrate_sqlite(path)
        return lambda: SqliteQueueStore(path)
    url = str(request.getfixturevalue("postgres_url"))
    migrate_postgres(url)
    return lambda: PostgresQueueStore(url, max_connections=2)


@pytest.fixture
async def queue(new_store: StoreFactory, anyio_backend: str) -> AsyncIterator[LocalQueue]:
    async with LocalQueue(new_store(), visibility_timeout=0.3, max_receives=3) as q:
        yield q


def job(n: int = 0) -> JobMessage:
    return JobMessage(job_id=uuid4(), attempt=0, customer_id="c", dedup_key=f"k-{n}")


async def test_an_old_receipt_is_refused_once_the_message_was_received_again(
    queue: LocalQueue,
) -> None:
    await queue.send(job())
    (first,) = await queue.receive()
    await anyio.sleep(0.4)
    (second,) = await queue.receive()

    with pytest.raises(ReceiptInvalid):
        await queue.delete(first)
    with pytest.raises(ReceiptInvalid):
        await queue.extend(first, 5)
    with pytest.raises(ReceiptInvalid):
        await queue.release(first)
    await queue.delete(second)
    with pytest.raises(ReceiptInvalid):
        await queue.delete(second)  # already gone


async def test_an_unattempted_release_uncounts_its_receive_once_per_receipt(
    queue: LocalQueue,
) -> None:
    await queue.send(job())
    (first,) = await queue.receive(visibility_timeout=60)
    await queue.release(first, attempted=False)

    with pytest.raises(ReceiptInvalid):  # handed back: the receipt is spent
        await queue.release(first, attempted=False)
    with pytest.raises(ReceiptInvalid):
        await queue.delete(first)
    (second,) = await queue.receive(visibility_timeout=60)
    assert second.receive_count == 1
    await queue.release(second)  # a counted release keeps the receive
    (third,) = await queue.receive(visibility_timeout=60)
    assert third.receive_count == 2


async def test_concurrent_deletes_share_store_calls_and_each_gets_its_own_answer(
    queue: LocalQueue, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Jobs finishing together delete their messages in a few store calls, not one each;
    a stale receipt among them is refused alone."""
    await queue.send_batch([job(n) for n in range(12)])
    received: list[Received] = []
    while len(received) < 12:
        received.extend(await queue.receive(max_messages=10))
    stale = received[0]
    await queue.delete(stale)

    calls: list[int] = []
    delete_many = queue.store.delete_many

    def counted(name: str, items: list[tuple[int, str]]) -> list[bool]:
        calls.append(len(items))
        return delete_many(name, items)

    monkeypatch.setattr(queue.store, "delete_many", counted)
    outcomes: list[str] = [""] * 12

    async def delete(index: int, message: Received) -> None:
        try:
            await queue.delete(message)
            outcomes[index] = "deleted"
        except ReceiptInvalid:
            outcomes[index] = "refused"

    async with anyio.create_task_group() as tasks:
        for index, message in enumerate(received):
            tasks.start_soon(delete, index, message)

    assert outcomes == ["refused"] + ["deleted"] * 11
    assert sum(calls) == 12
    if queue.store.blocking:  # deletes queue up behind the one in flight in a thread
        assert len(calls) < 12
    else:  # the in-memory store answers at once: nothing ever waits
        assert calls == [1] * 12
    await queue.send(job(99))
    assert len(await queue.receive(max_messages=10)) == 1  # only the new one is left


async def test_exhausted_messages_ahead_do_not_hide_a_fresh_one(new_store: StoreFactory) -> None:
    async with LocalQueue(new_store(), max_receives=1) as q:
        await q.send_batch([job(n) for n in range(15)])
        got: list[Received] = []
        while len(got) < 15:
            got.extend(await q.receive(max_messages=10, visibility_timeout=0))
        fresh = job(99)
        await q.send(fresh)

        received = await q.receive(max_messages=1)

        assert [r.message for r in received] == [fresh]
        assert len(await q.read_dead_letters(max_messages=100)) == 15


async def test_messages_survive_closing_and_reopening(new_store: StoreFactory) -> None:
    message = job()
    async with LocalQueue(new_store(), name="durable") as q:
        await q.send(message, delay=0)
    async with LocalQueue(new_store(), name="durable") as q:
        (received,) = await q.receive()
    assert received.message == message


async def test_queues_with_different_names_are_separate(new_store: StoreFactory) -> None:
    async with LocalQueue(new_store(), name="a") as a, LocalQueue(new_store(), name="b") as b:
        await a.send(job())
        assert await b.receive() == []
        assert len(await a.receive()) == 1


@pytest.mark.postgres
async def test_postgres_receivers_skip_rows_locked_by_others(
    postgres_url: str, anyio_backend: str
) -> None:
    migrate_postgres(postgres_url)
    async with LocalQueue(PostgresQueueStore(postgres_url)) as q:
        await q.send(job(1))
        await q.send(job(2))
        with psycopg.connect(postgres_url) as other, other.transaction():
            other.execute(
                "SELECT seq FROM local_queue_messages ORDER BY seq LIMIT 1 FOR UPDATE"
            )
            started = time.monotonic()
            received = await q.receive(max_messages=10)
            assert time.monotonic() - started < 2  # did not wait for the lock
        assert [r.message.dedup_key for r in received] == ["k-2"]


async def test_build_transport_defaults_to_the_local_queue_in_the_sqlite_file(
    tmp_path: Path, anyio_backend: str
) -> None:
    settings = Settings(ledger_data_dir=tmp_path / "data")
    transport = build_transport(settings, backend_for(settings), {})
    try:
        assert isinstance(transport, LocalQueue)
        assert isinstance(transport.store, SqliteQueueStore)
        assert transport.store.path == settings.sqlite_path
        await transport.send(job())
        assert len(await transport.receive()) == 1
    finally:
        await transport.aclose()


@pytest.mark.postgres
async def test_build_transport_uses_postgres_when_database_url_is_set(
    postgres_url: str, tmp_path: Path, anyio_backend: str
) -> None:
    settings = Settings(database_url=postgres_url, ledger_data_dir=tmp_path / "data")
    transport = build_transport(settings, backend_for(settings), {})
    try:
        assert isinstance(transport, LocalQueue)
        assert isinstance(transport.store, PostgresQueueStore)
        await transport.send(job())
        assert len(await transport.receive()) == 1
    finally:
        await transport.aclose()
