"""The dispatcher's failed rounds: it backs off and goes on (it used to end the part), opens
a fresh session after a failure (not after a stop at an unreadable event, which a new
session cannot fix), and never advances past an event it did not send."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import cast
from uuid import uuid4

import anyio

from adapters.service.dispatcher import DISPATCH, Dispatcher
from ledger.application import JobLedger
from ledger.commands import EnqueueJob
from ledger.ports.transport import JobMessage, Outgoing, Transport
from projections.events import RawRow
from projections.store import Tracking, ViewStore
from tests.support.projection_events import T0, logged, memory_ledger


class Database:
    def __init__(self, rows: list[RawRow]) -> None:
        self.rows = rows
        self.position = 0
        self.sessions: list[FakeStore] = []

    def open(self) -> ViewStore:
        self.sessions.append(FakeStore(self))
        return cast(ViewStore, self.sessions[-1])


class FakeStore:
    """A session on :class:`Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.locks = 0
        self.closed = False

    def try_lock(self, name: str) -> bool:
        self.locks += 1
        return True

    def unlock(self, name: str) -> None:
        pass

    def tracking(self, view: str) -> Tracking:
        return Tracking(DISPATCH, self.db.position, 0)

    def read_events(self, after: int, limit: int) -> list[RawRow]:
        return [row for row in self.db.rows if row[0] > after][:limit]

    def wait_for_events(self, timeout: float) -> None:
        pass

    @contextmanager
    def transaction(self) -> Iterator[None]:
        yield

    def advance(self, expected: Tracking, position: int, owner: str) -> bool:
        assert not self.closed
        self.db.position = position
        return True

    def close(self) -> None:
        self.closed = True


class FlakyTransport:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.sent: list[str] = []

    async def send_batch(self, entries: Sequence[JobMessage | Outgoing]) -> list[str]:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("the queue is down")
        for entry in entries:
            assert isinstance(entry, Outgoing)
            self.sent.append(entry.message.dedup_key)
        return [str(i) for i in range(len(entries))]


def run_until(dispatcher: Dispatcher, done: object, seconds: float = 5.0) -> None:
    assert callable(done)

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            await tg.start(dispatcher)
            with anyio.fail_after(seconds):
                while not done():
                    await anyio.sleep(0.01)
            tg.cancel_scope.cancel()

    anyio.run(main)


def test_a_stop_at_an_unreadable_event_is_retried_never_skipped_and_keeps_its_session(
) -> None:
    db = Database([(1, str(uuid4()), 1, "nobody.knows:This", b"{}")])
    store = db.open()
    transport = FlakyTransport(0)
    dispatcher = Dispatcher(
        store, cast(JobLedger, None), cast(Transport, transport),
        clock=lambda: datetime.now(UTC), owner="test", poll_interval=0.01, max_backoff=0.02,
        reopen=db.open,
    )
    run_until(dispatcher, lambda: dispatcher.failed_rounds >= 3)
    assert db.position == 0
    assert transport.sent == []
    assert dispatcher.reconnects == 0
    assert dispatcher.store is store


def test_a_failed_send_reconnects_retakes_the_lock_and_sends_the_page_again() -> None:
    ledger = memory_ledger()
    ids = [ledger.execute(EnqueueJob(customer_id="acme"), T0).job_id for _ in range(3)]
    db = Database(logged(ledger))
    transport = FlakyTransport(2)
    dispatcher = Dispatcher(
        db.open(), ledger, cast(Transport, transport),
        clock=lambda: T0, owner="test", poll_interval=0.01, max_backoff=0.02,
        reopen=db.open,
    )
    run_until(dispatcher, lambda: db.position == db.rows[-1][0])
    assert dispatcher.failed_rounds == 2
    assert dispatcher.reconnects == 2
    assert [s.closed for s in db.sessions] == [True, True, False]
    assert [s.locks for s in db.sessions] == [1, 1, 1]  # the lock retaken on each session
    assert transport.sent == [f"{job_id}:v1" for job_id in ids]  # each sent once, in order


def test_the_position_is_read_once_while_the_dispatcher_holds_its_lock() -> None:
    ledger = memory_ledger()
    for _ in range(5):
        ledger.execute(EnqueueJob(customer_id="acme"), T0)
    rows = logged(ledger)
    db = Database(rows)
    store = db.open()
    reads: list[int] = []
    original = store.tracking

    def counted(view: str) -> Tracking:
        reads.append(db.position)
        return original(view)

    store.tracking = counted  # type: ignore[method-assign]
    transport = FlakyTransport(0)
    dispatcher = Dispatcher(
        store, ledger, cast(Transport, transport), clock=lambda: datetime.now(UTC),
        owner="test", page=1, poll_interval=0.01, max_backoff=0.02, reopen=db.open,
    )
    run_until(dispatcher, lambda: db.position == rows[-1][0])
    assert len(transport.sent) == 5  # five pages of one event
    assert reads == [0]  # once, when it took the lock; then its own advances
