"""The transport contract: every adapter of the port behaves the same.

Runs on the in-memory fake, the local queue on SQLite and on PostgreSQL, and SQS on moto's
server mode (real HTTP, real botocore). Time runs for real, in units of ``tick``: the local
queues honour fractions of a second, SQS whole seconds.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import anyio
import pytest

from adapters.local_queue.queue import LocalQueue
from adapters.memory.queue import MemoryQueueStore
from adapters.sqs import SqsConfig, SqsTransport
from ledger.errors import BatchSendFailed, InvalidTransportRequest
from ledger.ports.queue_store import QueueStore
from ledger.ports.transport import JobMessage, Outgoing, Received, Transport
from tests.support.sqs import SqsQueues, add_queue

pytestmark = pytest.mark.anyio

MAX_RECEIVES = 3
LONG_LOCAL_DELAY = 20 * 60.0
"""Beyond SQS's 15-minute maximum: the local queues honour it on their (shifted) clock."""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class ShiftedClock:
    """Wall-clock time plus an offset the test can push forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@dataclass
class Harness:
    """One adapter under test and how to make time pass for it."""

    kind: str
    transport: Transport
    tick: float
    """A short time the adapter honours (visibility timeouts, delays)."""
    long_delay: float
    """A delay longer than the adapter's native maximum."""
    long_delay_transport: Transport
    skip: Callable[[float], Awaitable[None]]
    """Let this many seconds pass for the adapter's notion of 'due'."""
    make_peer: Callable[[], Transport]
    """Another transport on the same queue, as another process would have."""
    peers: list[Transport] = field(default_factory=list)

    def peer(self) -> Transport:
        transport = self.make_peer()
        self.peers.append(transport)
        return transport


def local_harness(kind: str, new_store: Callable[[], QueueStore]) -> Harness:
    clock = ShiftedClock()
    name = f"q-{uuid4().hex[:8]}"

    def queue() -> LocalQueue:
        return LocalQueue(
            new_store(), name=name, visibility_timeout=1.0, max_receives=MAX_RECEIVES,
            poll_interval=0.05, clock=clock,
        )

    async def skip(seconds: float) -> None:
        clock.offset += seconds

    transport = queue()
    return Harness(
        kind=kind, transport=transport, tick=0.5, long_delay=LONG_LOCAL_DELAY,
        long_delay_transport=transport, skip=skip, make_peer=queue,
    )


def sqs_harness(queues: SqsQueues) -> Harness:
    # Logical queue "a" has a physical queue of its own; every other one shares the default,
    # in priority bands (ADR 100): 50 and above, 1..49, 0, and below 0 (the default queue).
    own = {"a": add_queue(queues, "a")}
    bands = ((50, add_queue(queues, "urgent")), (1, add_queue(queues, "high")),
             (0, add_queue(queues, "normal")))

    def config(**overrides: int) -> SqsConfig:
        return SqsConfig(
            queue_url=queues.queue_url, dlq_url=queues.dlq_url, region="us-east-1",
            endpoint_url=queues.endpoint, dead_letter_wait=0, queue_urls=own,
            priority_urls=bands, **overrides,
        )

    async def skip(seconds: float) -> None:
        await anyio.sleep(seconds)

    transport = SqsTransport(config())
    # SQS's 15-minute hop, shortened to 1 s so the test sees a long delay hop for real.
    hopping = SqsTransport(config(max_native_delay=1))
    harness = Harness(
        kind="sqs", transport=transport, tick=1.0, long_delay=2.5,
        long_delay_transport=hopping, skip=skip, make_peer=lambda: SqsTransport(config()),
    )
    harness.peers.append(hopping)
    return harness


@pytest.fixture(
    params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "sqs"]
)
async def harness(
    request: pytest.FixtureRequest, tmp_path: Path, anyio_backend: str
) -> AsyncIterator[Harness]:
    kind = str(request.param)
    if kind == "memory":
        store = MemoryQueueStore()
        h = local_harness(kind, lambda: store)
    elif kind == "sqlite":
        from adapters.sqlite.local_queue import SqliteQueueStore
        from adapters.sqlite.migrate import migrate

        path = tmp_path / "ledger.sqlite3"
        migrate(path)
        h = local_harness(kind, lambda: SqliteQueueStore(path))
    elif kind == "postgres":
        from adapters.postgres.local_queue import PostgresQueueStore
        from adapters.postgres.migrate import migrate as migrate_postgres

        url = str(request.getfixturevalue("postgres_url"))
        migrate_postgres(url)
        h = local_harness(kind, lambda: PostgresQueueStore(url, max_connections=2))
    else:
        h = sqs_harness(request.getfixturevalue("sqs_queues"))
    try:
        yield h
    finally:
        for transport in [h.transport, *h.peers]:
            await transport.aclose()


def job(
    n: int = 0, *, attempt: int = 0, queue: str = "default", priority: int = 0
) -> JobMessage:
    return JobMessage(
        job_id=uuid4(), attempt=attempt, customer_id=f"customer-{n % 3}",
        queue=queue, dedup_key=f"job-{n}-{uuid4().hex[:6]}", priority=priority,
    )


async def drain(
    t: Transport, count: int, within: float, queues: frozenset[str] | None = None
) -> list[Received]:
    """Receive (of ``queues`` only, when given) until ``count`` messages arrived or
    ``within`` seconds passed."""
    got: list[Received] = []
    deadline = anyio.current_time() + within
    while len(got) < count and anyio.current_time() < deadline:
        got.extend(await t.receive(
            max_messages=10, wait_seconds=1, visibility_timeout=60, queues=queues
        ))
    return got


async def receive_one(t: Transport, wait: float, visibility: float | None = None) -> Received:
    got = await t.receive(wait_seconds=wait, visibility_timeout=visibility)
    assert len(got) == 1, f"expected one message, got {got}"
    return got[0]


async def make_dead(h: Harness, messages: Sequence[JobMessage]) -> list[str]:
    """Send ``messages`` and receive each until the queue dead-letters it."""
    t = h.transport
    ids = await t.send_batch(list(messages))
    for _ in range(MAX_RECEIVES):
        got = await drain(t, len(messages), within=h.tick * 8)
        assert len(got) == len(messages)
        for received in got:
            await t.release(received)
    assert await t.receive(max_messages=10) == []  # over the limit: moved, not delivered
    return ids


# -- sending and receiving ------------------------------------------------------------------


async def test_send_and_receive_round_trip_with_attributes(harness: Harness) -> None:
    t = harness.transport
    message = job(1, attempt=2)
    message_id = await t.send(message)

    received = await receive_one(t, wait=harness.tick * 4)

    assert received.message == message
    assert received.message_id == message_id
    assert received.receive_count == 1
    assert received.attributes == {"job_id": str(message.job_id), "attempt": "2"}
    assert abs(received.sent_at - datetime.now(UTC)) < timedelta(minutes=1)
    await t.delete(received)
    assert await t.receive() == []


async def test_batch_of_25_is_sent_and_received_whole(harness: Harness) -> None:
    t = harness.transport
    messages = [job(n) for n in range(25)]

    ids = await t.send_batch(messages)

    assert len(ids) == 25
    assert len(set(ids)) == 25
    got = await drain(t, 25, within=harness.tick * 10)
    assert sorted(r.message_id for r in got) == sorted(ids)
    assert {r.message.dedup_key for r in got} == {m.dedup_key for m in messages}


async def test_batch_reports_each_failed_entry_and_sends_the_rest(harness: Harness) -> None:
    t = harness.transport
    messages = [job(n) for n in range(12)]
    entries: list[JobMessage | Outgoing] = list(messages)
    entries[3] = Outgoing(messages[3], delay=-1)
    entries[11] = Outgoing(messages[11], delay=float("nan"))

    with pytest.raises(BatchSendFailed) as raised:
        await t.send_batch(entries)

    failure = raised.value
    assert [f.entry for f in failure.failures] == [3, 11]
    assert {f.code for f in failure.failures} == {"invalid_transport_request"}
    assert failure.sent[3] is None
    assert failure.sent[11] is None
    assert all(failure.sent[i] for i in range(12) if i not in (3, 11))
    got = await drain(t, 10, within=harness.tick * 10)
    assert {r.message.dedup_key for r in got} == {
        m.dedup_key for i, m in enumerate(messages) if i not in (3, 11)
    }


async def test_invalid_arguments_are_refused(harness: Harness) -> None:
    t = harness.transport
    with pytest.raises(InvalidTransportRequest):
        await t.receive(max_messages=11)
    with pytest.raises(InvalidTransportRequest):
        await t.receive(wait_seconds=21)
    with pytest.raises(InvalidTransportRequest):
        await t.send(job(), delay=-5)
    with pytest.raises(InvalidTransportRequest):
        await t.receive(visibility_timeout=43_201)


# -- visibility -------------------------------------------------------------------------------


async def test_unacknowledged_message_reappears_after_visibility_timeout(
    harness: Harness,
) -> None:
    t = harness.transport
    await t.send(job())
    first = await receive_one(t, wait=harness.tick * 4, visibility=harness.tick)

    assert await t.receive() == []  # invisible while the first receiver has it
    second = await receive_one(t, wait=harness.tick * 4)

    assert second.message_id == first.message_id
    assert second.receive_count == 2
    await t.delete(second)
    await anyio.sleep(harness.tick * 1.5)
    assert await t.receive() == []  # deleted: gone for good


async def test_extend_keeps_a_running_job_invisible(harness: Harness) -> None:
    t = harness.transport
    await t.send(job())
    received = await receive_one(t, wait=harness.tick * 4, visibility=harness.tick)

    await t.extend(received, harness.tick * 3)
    await anyio.sleep(harness.tick * 1.5)  # past the original timeout

    assert await t.receive() == []
    again = await receive_one(t, wait=harness.tick * 4)
    assert again.message_id == received.message_id
    assert again.receive_count == 2


async def test_release_makes_visible_now_or_after_a_delay(harness: Harness) -> None:
    t = harness.transport
    await t.send(job())
    first = await receive_one(t, wait=harness.tick * 4, visibility=60)

    await t.release(first)
    second = await receive_one(t, wait=0, visibility=60)
    assert second.receive_count == 2

    await t.release(second, delay=harness.tick * 2)
    assert await t.receive() == []
    started = anyio.current_time()
    third = await receive_one(t, wait=harness.tick * 6)
    assert third.message_id == first.message_id
    assert third.receive_count == 3
    assert anyio.current_time() - started >= harness.tick


async def test_a_release_no_handler_attempted_never_dead_letters(harness: Harness) -> None:
    """Issue 13: a worker that hands a message back without running a handler (draining,
    or the ledger unreachable at the claim) does not spend the message's receive count."""
    t = harness.transport
    message = job(1)
    await t.send(message)

    for _ in range(MAX_RECEIVES + 3):
        received = await receive_one(t, wait=harness.tick * 4, visibility=60)
        assert received.message == message
        assert received.receive_count == 1
        await t.release(received, attempted=False)

    assert await t.read_dead_letters() == []
    again = await receive_one(t, wait=harness.tick * 4, visibility=60)
    assert again.message == message
    assert again.receive_count == 1
    await t.delete(again)
    assert await t.receive(wait_seconds=harness.tick) == []


async def test_an_unattempted_release_honours_its_delay(harness: Harness) -> None:
    t = harness.transport
    await t.send(job())
    first = await receive_one(t, wait=harness.tick * 4, visibility=60)

    await t.release(first, delay=harness.tick * 2, attempted=False)
    assert await t.receive() == []
    second = await receive_one(t, wait=harness.tick * 6, visibility=60)
    assert second.message == first.message
    assert second.receive_count == 1


# -- logical queues ---------------------------------------------------------------------------


async def test_a_receive_for_some_queues_gets_only_their_messages(harness: Harness) -> None:
    t = harness.transport
    mine, other, default = job(1, queue="a"), job(2, queue="b"), job(3)
    await t.send_batch([other, mine, default])

    got = await drain(t, 1, within=harness.tick * 8, queues=frozenset({"a"}))
    assert [r.message for r in got] == [mine]
    assert got[0].receive_count == 1

    got = await drain(t, 1, within=harness.tick * 8, queues=frozenset({"b"}))
    assert [r.message for r in got] == [other]
    assert got[0].receive_count == 1

    got = await drain(t, 1, within=harness.tick * 8, queues=frozenset({"default"}))
    assert [r.message for r in got] == [default]
    assert got[0].receive_count == 1  # the receives for "a" and "b" never counted


async def test_receives_for_other_queues_never_dead_letter_a_message(harness: Harness) -> None:
    t = harness.transport
    waiting = [job(1, queue="advc"), job(2)]
    await t.send_batch(waiting)

    for _ in range(MAX_RECEIVES + 2):
        got = await t.receive(
            max_messages=10, wait_seconds=harness.tick, visibility_timeout=harness.tick,
            queues=frozenset({"e"}),
        )
        assert got == []

    assert await t.read_dead_letters() == []
    got = await drain(t, 2, within=harness.tick * 8, queues=frozenset({"advc", "default"}))
    assert sorted(str(r.message) for r in got) == sorted(str(m) for m in waiting)
    assert {r.receive_count for r in got} == {1}


# -- priority ------------------------------------------------------------------------------------


def needs_priority(harness: Harness, *, own_queue: bool = False) -> None:
    if harness.kind == "sqs" and own_queue:
        pytest.skip("on SQS a logical queue with a queue of its own has no bands (ADR 100)")


async def test_higher_priority_is_received_first_fifo_within_a_priority(
    harness: Harness,
) -> None:
    """Issue 14: an urgent job sent after a backlog is received before it; jobs of one
    priority come in the order they were sent (one receive at a time, as a busy worker)."""
    needs_priority(harness)
    t = harness.transport
    low = [job(n, priority=-5) for n in range(3)]
    normal = [job(n) for n in range(3, 6)]
    urgent = [job(n, priority=50) for n in range(6, 9)]
    for message in [*low, *normal, *urgent[:2]]:
        await t.send(message)
    await t.send_batch([urgent[2]])

    got = []
    for _ in range(9):
        received = await receive_one(t, wait=harness.tick * 4, visibility=60)
        got.append(received.message)
    assert got == [*urgent, *normal, *low]


async def test_a_batch_receive_hands_out_the_highest_priorities(harness: Harness) -> None:
    needs_priority(harness)
    t = harness.transport
    backlog = [job(n) for n in range(6)]
    first = [job(6, priority=100), job(7, priority=1)]
    await t.send_batch(backlog)
    await t.send_batch(first)

    got = await t.receive(max_messages=3, wait_seconds=harness.tick * 4, visibility_timeout=60)
    assert [r.message for r in got] == [*first, backlog[0]]


async def test_priority_within_one_logical_queue(harness: Harness) -> None:
    needs_priority(harness, own_queue=True)
    t = harness.transport
    other_urgent = job(1, queue="b", priority=90)
    mine = [job(2, queue="a"), job(3, queue="a", priority=10)]
    await t.send_batch([mine[0], other_urgent, mine[1]])

    got = await drain(t, 2, within=harness.tick * 8, queues=frozenset({"a"}))
    assert [r.message for r in got] == [mine[1], mine[0]]


# -- delays --------------------------------------------------------------------------------------


async def test_delayed_message_is_invisible_until_due(harness: Harness) -> None:
    t = harness.transport
    started = anyio.current_time()
    await t.send(job(), delay=harness.tick * 2)

    assert await t.receive() == []
    received = await receive_one(t, wait=harness.tick * 6)
    assert anyio.current_time() - started >= harness.tick * 1.5
    assert received.receive_count == 1


async def test_delay_beyond_the_native_maximum_is_honoured(harness: Harness) -> None:
    t = harness.long_delay_transport
    message = job()
    await t.send(message, delay=harness.long_delay)

    assert await t.receive() == []
    await harness.skip(harness.long_delay * 0.6)
    assert await t.receive() == []  # still early (SQS: an early copy hops on)

    await harness.skip(harness.long_delay * 0.4)
    received = await receive_one(t, wait=harness.tick * 4)
    assert received.message == message
    assert received.receive_count == 1  # hops do not spend the receive budget


# -- dead letters ----------------------------------------------------------------------------------


async def test_message_is_dead_lettered_after_max_receives(harness: Harness) -> None:
    t = harness.transport
    message = job()
    (message_id,) = await make_dead(harness, [message])

    letters = await t.read_dead_letters()

    assert len(letters) == 1
    (letter,) = letters
    assert letter.message == message
    assert letter.message_id == message_id
    assert letter.receive_count >= MAX_RECEIVES
    assert letter.attributes == {"job_id": str(message.job_id), "attempt": "0"}
    # Reading is a peek: the dead letter is still there.
    assert [d.message_id for d in await t.read_dead_letters()] == [message_id]


async def test_redrive_moves_dead_letters_back_with_a_fresh_receive_count(
    harness: Harness,
) -> None:
    t = harness.transport
    messages = [job(1), job(2)]
    await make_dead(harness, messages)

    moved = await t.redrive()

    assert sorted(str(d.message) for d in moved) == sorted(str(m) for m in messages)
    assert await t.read_dead_letters() == []
    got = await drain(t, 2, within=harness.tick * 8)
    assert {r.message.job_id for r in got} == {m.job_id for m in messages}
    assert {r.receive_count for r in got} == {1}


async def test_redrive_by_message_id_and_delete_a_dead_letter(harness: Harness) -> None:
    t = harness.transport
    first, second = job(1), job(2)
    await make_dead(harness, [first, second])
    letters = {d.message.job_id: d for d in await t.read_dead_letters() if d.message}

    moved = await t.redrive([letters[first.job_id].message_id])

    assert [d.message for d in moved] == [first]
    remaining = await t.read_dead_letters()
    assert [d.message for d in remaining] == [second]
    assert (await receive_one(t, wait=harness.tick * 4)).message == first
    await t.delete_dead_letter(remaining[0])
    assert await t.read_dead_letters() == []
    assert await t.redrive() == []


# -- concurrency ----------------------------------------------------------------------------------


async def test_long_poll_returns_as_soon_as_a_message_arrives(harness: Harness) -> None:
    receiver, sender = harness.transport, harness.peer()
    message = job()
    got: list[Received] = []

    async def receive() -> None:
        got.extend(await receiver.receive(wait_seconds=15))

    started = anyio.current_time()
    async with anyio.create_task_group() as tg:
        tg.start_soon(receive)
        await anyio.sleep(0.3)
        await sender.send(message)
    elapsed = anyio.current_time() - started

    assert [r.message for r in got] == [message]
    assert elapsed < 3.0


async def test_concurrent_receivers_never_share_a_message(harness: Harness) -> None:
    await harness.transport.send_batch([job(n) for n in range(30)])
    receivers = [harness.transport, harness.peer(), harness.peer()]
    got: list[Received] = []

    async def consume(t: Transport) -> None:
        deadline = anyio.current_time() + harness.tick * 10
        while len(got) < 30 and anyio.current_time() < deadline:
            got.extend(await t.receive(max_messages=4, wait_seconds=1, visibility_timeout=60))

    async with anyio.create_task_group() as tg:
        for t in receivers:
            tg.start_soon(consume, t)

    ids = [r.message_id for r in got]
    assert len(ids) == 30
    assert len(set(ids)) == 30
