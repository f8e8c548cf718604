"""The local queue: SQS semantics on the ledger's own database (or in memory).

:class:`LocalQueue` implements the transport port over a small synchronous
:class:`QueueStore` (``adapters/sqlite/local_queue.py``, ``adapters/postgres/local_queue.py``
and the in-memory fake in ``adapters/memory/queue.py``). The store keeps one row per
message with its visibility time, receive count, current receipt and, once it exceeded the
max receive count, the time it was dead-lettered. Time is the queue's clock (epoch seconds,
injectable so tests can jump past long delays); delays have no upper bound beyond
:data:`~ledger.ports.transport.MAX_DELAY_SECONDS`.

Long polls return as soon as a message becomes available: a send through the same
``LocalQueue`` wakes its receivers at once; sends from other processes wake them at once
too when the store can listen for them (PostgreSQL: the log's ``NOTIFY``, ADR 210), and
are seen within ``poll_interval`` otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Protocol, TypeVar

import anyio
import anyio.to_thread

from ledger.errors import (
    BatchFailure,
    BatchSendFailed,
    InvalidTransportRequest,
    MalformedMessage,
    ReceiptInvalid,
    TransportError,
    TransportUnavailable,
)
from ledger.ports.queue_store import (
    DEFAULT_MAX_RECEIVES,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_QUEUE,
    DEFAULT_VISIBILITY_TIMEOUT,
    NewMessage,
    QueueStore,
    StoredMessage,
)
from ledger.ports.transport import (
    ATTR_ATTEMPT,
    ATTR_JOB_ID,
    DeadLetter,
    JobMessage,
    Outgoing,
    Received,
    check_delay,
    check_max_messages,
    check_visibility,
    check_wait,
    decode_message,
    encode_message,
    outgoing,
)

T = TypeVar("T")
log = logging.getLogger(__name__)

PUT_BATCH = 500
"""Messages per write to the store in ``send_batch`` (one transaction, one durable commit
each). SQS's 10 per request is a limit of its API, not of a table: in groups of 10 a
dispatcher's page of 500 took 50 commits, ~0.8 s on a loaded machine, and the sends of
scheduled jobs fell behind (docs/benchmarks.md, operator controls)."""


class Closeable(Protocol):
    """What a store's ``listen(on_notify)`` answers (ADR 210)."""

    def close(self) -> None: ...


class LocalQueue:
    """The transport port on a :class:`QueueStore`."""

    def __init__(
        self,
        store: QueueStore,
        *,
        name: str = DEFAULT_QUEUE,
        visibility_timeout: float = DEFAULT_VISIBILITY_TIMEOUT,
        max_receives: int = DEFAULT_MAX_RECEIVES,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_receives < 1:
            raise InvalidTransportRequest(f"max_receives must be at least 1, got {max_receives}")
        self.store = store
        self.name = name
        self.visibility_timeout = check_visibility(visibility_timeout)
        self.max_receives = max_receives
        self.poll_interval = poll_interval
        self.clock = clock
        self._waiters: set[anyio.Event] = set()
        self._listener: Closeable | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._deletes: list[tuple[int, str, asyncio.Future[bool]]] = []
        self._deleting = False

    async def __aenter__(self) -> LocalQueue:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- sending ----------------------------------------------------------------------------

    async def send(self, message: JobMessage, *, delay: float = 0.0) -> str:
        (row,) = self._rows([Outgoing(message, check_delay(delay))], self.clock())
        await self._run(self.store.put, self.name, [row])
        self._wake()
        return row.message_id

    async def send_batch(self, entries: Sequence[JobMessage | Outgoing]) -> list[str]:
        items = outgoing(entries)
        sent: list[str | None] = [None] * len(items)
        failures: list[BatchFailure] = []
        for start in range(0, len(items), PUT_BATCH):
            group = list(enumerate(items[start:start + PUT_BATCH], start))
            valid: list[tuple[int, Outgoing]] = []
            for index, item in group:
                try:
                    check_delay(item.delay)
                except InvalidTransportRequest as error:
                    failures.append(BatchFailure(index, error.code, error.message))
                else:
                    valid.append((index, item))
            rows = self._rows([item for _, item in valid], self.clock())
            try:
                await self._run(self.store.put, self.name, rows)
            except TransportError as error:
                failures.extend(BatchFailure(i, error.code, error.message) for i, _ in valid)
                continue
            for (index, _), row in zip(valid, rows, strict=True):
                sent[index] = row.message_id
        if any(sent):
            self._wake()
        if failures:
            raise BatchSendFailed(sorted(failures), sent)
        return [message_id for message_id in sent if message_id is not None]

    def _rows(self, items: Sequence[Outgoing], now: float) -> list[NewMessage]:
        return [
            NewMessage(
                message_id=str(uuid.uuid4()),
                job_id=str(item.message.job_id),
                attempt=item.message.attempt,
                body=encode_message(item.message),
                sent_at=now,
                visible_at=now + item.delay,
                job_queue=item.message.queue,
                priority=item.message.priority,
            )
            for item in items
        ]

    # -- receiving ---------------------------------------------------------------------------

    async def receive(
        self,
        *,
        max_messages: int = 1,
        wait_seconds: float = 0.0,
        visibility_timeout: float | None = None,
        queues: Collection[str] | None = None,
    ) -> list[Received]:
        """Receive up to ``max_messages``; with ``queues``, the store's claim looks only at
        messages of those logical queues, so the others are never received nor counted."""
        check_max_messages(max_messages)
        deadline = anyio.current_time() + check_wait(wait_seconds)
        timeout = self.visibility_timeout
        if visibility_timeout is not None:
            timeout = check_visibility(visibility_timeout)
        job_queues = None if queues is None else sorted(set(queues))
        while True:
            now = self.clock()
            rows = await self._run(
                partial(
                    self.store.claim, self.name, now=now, limit=max_messages,
                    visible_until=now + timeout, max_receives=self.max_receives,
                    job_queues=job_queues,
                )
            )
            received = [r for r in map(self._received, rows) if r is not None]
            if received:
                return received
            remaining = deadline - anyio.current_time()
            if remaining <= 0:
                return []
            await self.wait_for_send(min(self.poll_interval, remaining))

    def _received(self, row: StoredMessage) -> Received | None:
        attributes = {ATTR_JOB_ID: row.job_id, ATTR_ATTEMPT: str(row.attempt)}
        try:
            message = decode_message(row.body, attributes)
        except MalformedMessage as error:
            # Left invisible: once received max_receives times it is dead-lettered.
            log.warning("local queue %s: skipping message %s: %s", self.name, row.message_id, error)
            return None
        return Received(
            message=message,
            message_id=row.message_id,
            receipt=f"{row.seq}:{row.receipt}",
            receive_count=row.receive_count,
            sent_at=datetime.fromtimestamp(row.sent_at, UTC),
            attributes=attributes,
        )

    async def extend(self, received: Received, visibility_timeout: float) -> None:
        seq, receipt = _parse_receipt(received.receipt)
        visible_at = self.clock() + check_visibility(visibility_timeout)
        if not await self._run(self.store.set_visibility, self.name, seq, receipt, visible_at):
            raise ReceiptInvalid()

    async def delete(self, received: Received) -> None:
        """Delete the message. Deletes that arrive while one is in flight (the jobs of a
        worker finishing together) go to the store together, as one statement: the first
        caller sends batches until none is waiting."""
        seq, receipt = _parse_receipt(received.receipt)
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._deletes.append((seq, receipt, done))
        if not self._deleting:
            self._deleting = True
            try:
                while self._deletes:
                    batch, self._deletes = self._deletes, []
                    await self._delete_batch(batch)
            except BaseException:  # cancelled: our own answer is not awaited
                if done.done() and not done.cancelled():
                    done.exception()
                raise
            finally:
                self._deleting = False
                stranded, self._deletes = self._deletes, []
                for *_, waiting in stranded:
                    if not waiting.done():
                        waiting.set_exception(TransportUnavailable("the delete was not sent"))
        if not await done:
            raise ReceiptInvalid()

    async def _delete_batch(self, batch: list[tuple[int, str, asyncio.Future[bool]]]) -> None:
        """One store call for ``batch``; every waiter gets its answer or the error."""
        items = [(seq, receipt) for seq, receipt, _ in batch]
        try:
            deleted = await self._run(self.store.delete_many, self.name, items)
        except Exception as error:
            for *_, waiting in batch:
                if not waiting.done():
                    waiting.set_exception(error)
            return
        except BaseException:
            for *_, waiting in batch:
                if not waiting.done():
                    waiting.set_exception(TransportUnavailable("the delete was cancelled"))
            raise
        for (*_, waiting), ok in zip(batch, deleted, strict=True):
            if not waiting.done():
                waiting.set_result(ok)

    async def release(
        self, received: Received, *, delay: float = 0.0, attempted: bool = True
    ) -> None:
        """Make the message visible after ``delay``; unless ``attempted``, the store undoes
        the receive in the same statement (guarded by the receipt)."""
        seq, receipt = _parse_receipt(received.receipt)
        visible_at = self.clock() + check_delay(delay)
        call = self.store.set_visibility if attempted else self.store.hand_back
        if not await self._run(call, self.name, seq, receipt, visible_at):
            raise ReceiptInvalid()
        if delay == 0:
            self._wake()

    # -- dead letters --------------------------------------------------------------------------

    async def read_dead_letters(self, *, max_messages: int = 10) -> list[DeadLetter]:
        check_max_messages(max_messages, limit=1000)
        rows = await self._run(self.store.dead_letters, self.name, max_messages)
        return [_dead_letter(row, self.max_receives) for row in rows]

    async def delete_dead_letter(self, dead_letter: DeadLetter) -> None:
        try:
            seq = int(dead_letter.receipt)
        except ValueError:
            raise ReceiptInvalid() from None
        if not await self._run(self.store.delete_dead, self.name, seq):
            raise ReceiptInvalid()

    async def redrive(
        self, message_ids: Collection[str] | None = None, *, max_messages: int = 100
    ) -> list[DeadLetter]:
        check_max_messages(max_messages, limit=1000)
        if message_ids is None:
            candidates = await self.read_dead_letters(max_messages=max_messages)
        else:
            wanted = set(message_ids)
            candidates = [
                d for d in await self.read_dead_letters(max_messages=1000)
                if d.message_id in wanted
            ][:max_messages]
        ids = [d.message_id for d in candidates if d.message is not None]
        if not ids:
            return []
        moved = await self._run(self.store.revive, self.name, ids, self.clock())
        self._wake()
        return [
            _dead_letter(row, self.max_receives) for row in sorted(moved, key=lambda r: r.seq)
        ]

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            if self._listener is not None:
                await anyio.to_thread.run_sync(self._listener.close)
            await self._run(self.store.close)

    # -- plumbing --------------------------------------------------------------------------------

    async def _run(self, function: Callable[..., T], *args: object) -> T:
        if self.store.blocking:
            return await anyio.to_thread.run_sync(partial(function, *args))
        return function(*args)

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, set()
        for event in waiters:
            event.set()

    def _poke(self) -> None:
        """From the store's listening thread: wake the waiting receivers on their loop."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._wake)

    def _listen(self) -> None:
        if self._loop is not None or self._closed:
            return  # listening already (or closed)
        listen = getattr(self.store, "listen", None)
        if listen is not None:
            self._loop = asyncio.get_running_loop()
            self._listener = listen(self._poke)

    async def wait_for_send(self, seconds: float) -> None:
        """Wait up to ``seconds`` for a send: through this queue, or from another process
        when the store listens for them (ADR 210)."""
        self._listen()  # the first receiver to wait starts listening (senders never do)
        event = anyio.Event()
        self._waiters.add(event)
        try:
            with anyio.move_on_after(seconds):
                await event.wait()
        finally:
            self._waiters.discard(event)


def _parse_receipt(receipt: str) -> tuple[int, str]:
    seq, _, token = receipt.partition(":")
    if not seq.isdigit() or not token:
        raise ReceiptInvalid(f"not a local queue receipt: {receipt!r}")
    return int(seq), token


def _dead_letter(row: StoredMessage, max_receives: int) -> DeadLetter:
    attributes = {ATTR_JOB_ID: row.job_id, ATTR_ATTEMPT: str(row.attempt)}
    try:
        message: JobMessage | None = decode_message(row.body, attributes)
    except MalformedMessage:
        message = None
    return DeadLetter(
        message_id=row.message_id,
        receive_count=row.receive_count,
        max_receives=max_receives,
        body=row.body,
        message=message,
        receipt=str(row.seq),
        sent_at=datetime.fromtimestamp(row.sent_at, UTC),
        attributes=attributes,
    )
