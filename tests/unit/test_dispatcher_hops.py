"""The dispatcher's steps per round (issue 19, ADR 204): a page in one hop to the session's
thread, the position of pages that asked for nothing recorded later (once the log is read
to its head, or with the next page that does something), an idle poll in one hop, and a
wait after a small page when the outbox writes the queue rows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from types import SimpleNamespace
from typing import Any, TypeVar, cast
from uuid import UUID

import anyio

from adapters.service.dispatcher import LINGER_SECONDS, Dispatcher
from ledger.application import JobLedger
from ledger.commands import ClaimJob, EnqueueJob, RecordHeartbeat
from ledger.ports.transport import Transport
from projections.events import RawRow
from projections.store import Tracking
from tests.support.projection_events import T0, logged, memory_ledger
from tests.unit.test_dispatcher_rounds import Database, FakeStore, FlakyTransport, run_until

T = TypeVar("T")


def a_claimed_job() -> tuple[JobLedger, list[RawRow]]:
    """Enqueued, Claimed and three heartbeats: only the first asks for a message."""
    ledger = memory_ledger()
    job_id = ledger.execute(EnqueueJob(customer_id="acme"), T0).job_id
    assert job_id is not None
    ledger.execute(ClaimJob(job_id=UUID(str(job_id)), worker_id="w"), T0)
    for _ in range(3):
        ledger.execute(RecordHeartbeat(job_id=UUID(str(job_id)), attempt=1, worker_id="w"), T0)
    return ledger, logged(ledger)


class Counted(Dispatcher):
    """Counts its hops to the session's thread."""

    hops = 0

    async def _sync(self, func: Callable[..., T], *args: Any) -> T:
        self.hops += 1
        return await super()._sync(func, *args)


class CountingStore(FakeStore):
    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.advances = 0
        self.reads = 0
        self.waits = 0

    def read_events(self, after: int, limit: int) -> list[RawRow]:
        self.reads += 1
        return super().read_events(after, limit)

    def advance(self, expected: Tracking, position: int, owner: str) -> bool:
        self.advances += 1
        return super().advance(expected, position, owner)

    def wait_for_events(self, timeout: float) -> None:
        self.waits += 1


def dispatcher(ledger: Any, store: FakeStore, **kwargs: Any) -> Counted:
    return Counted(
        cast(Any, store), ledger, cast(Transport, FlakyTransport(0)),
        clock=lambda: datetime.now(UTC), owner="test", poll_interval=0.01,
        max_backoff=0.02, **kwargs,
    )


def test_pages_that_ask_for_nothing_take_one_hop_each_and_record_the_position_at_the_head(
) -> None:
    ledger, rows = a_claimed_job()
    assert len(rows) == 5
    db = Database(rows)
    db.position = rows[0][0]  # the Enqueued was sent
    store = CountingStore(db)
    sender = dispatcher(ledger, store, page=2)

    async def main() -> list[int]:
        return [await sender.step() for _ in range(3)]

    assert anyio.run(main) == [2, 2, 0]
    assert sender.hops == 3  # read, sort and advance in one hop per page
    assert store.advances == 1  # once, when the log was read to its head
    assert db.position == rows[-1][0]
    assert cast(FlakyTransport, sender._transport).sent == []


def test_a_restart_reads_the_unrecorded_pages_again_and_finds_nothing_in_them() -> None:
    ledger, rows = a_claimed_job()
    db = Database(rows)
    db.position = rows[0][0]
    first = dispatcher(ledger, CountingStore(db), page=2)
    anyio.run(first.step)
    assert db.position == rows[0][0]  # not recorded yet: a crash here loses nothing
    again = dispatcher(ledger, CountingStore(db), page=10)
    assert anyio.run(again.step) == 4
    assert cast(FlakyTransport, again._transport).sent == []


def test_an_idle_dispatcher_polls_in_one_hop() -> None:
    db = Database([])
    store = CountingStore(db)
    sender = dispatcher(memory_ledger(), store)
    run_until(sender, lambda: store.waits >= 5)
    # the lock, a read-and-wait per poll (one may be in flight), the unlock at the end
    assert sender.hops <= store.waits + 3


def test_with_the_outbox_it_waits_after_a_small_page() -> None:
    outboxed = cast(JobLedger, SimpleNamespace(outbox=object()))
    assert dispatcher(outboxed, CountingStore(Database([])))._linger == LINGER_SECONDS
    assert dispatcher(memory_ledger(), CountingStore(Database([])))._linger == 0.0
    ledger, rows = a_claimed_job()
    db = Database(rows[1:])  # four events asking for nothing, a small page of 100
    lingering, eager = CountingStore(db), CountingStore(db)
    run_until(dispatcher(ledger, lingering, page=100, linger=60.0),
              partial(lambda s: s.reads >= 1, lingering), seconds=5)
    run_until(dispatcher(ledger, eager, page=100, linger=0.0),
              partial(lambda s: s.reads >= 3, eager), seconds=5)
    anyio.run(anyio.sleep, 0.05)
    assert lingering.reads == 1  # then it sleeps: no read of an empty page
    assert eager.reads >= 3


def test_it_does_not_wait_after_a_small_page_that_sent() -> None:
    ledger = memory_ledger()
    for _ in range(3):
        ledger.execute(EnqueueJob(customer_id="acme"), T0)
    rows = logged(ledger)
    db = Database(rows)
    store = CountingStore(db)
    run_until(dispatcher(ledger, store, page=100, linger=60.0),
              partial(lambda s: s.reads >= 3, store), seconds=5)
    assert db.position == rows[-1][0]  # sent, recorded, read on: no 60 s wait
