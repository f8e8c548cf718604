"""Concurrent appends on PostgreSQL without the table-wide lock (ADR 150): appends do not
wait for each other's commits, and readers following the log by notification id still
read every committed event exactly once, in position order.

The hammer test appends from threads and processes, through the recorder and through
explicit transactions that roll back, commit late, or already had their transaction id
before they appended (as an application's transaction under ``enqueue_in`` does), while
readers follow the log the ways the ledger does: the view store's ``read_events`` (the
projection runner, the dispatcher) and eventsourcing's ``select_notifications``.
"""

from __future__ import annotations

import functools
import multiprocessing
import random
import threading
import time
from collections.abc import Callable
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from psycopg import sql

from adapters.postgres.backend import EVENTS_TABLE, postgres_env
from adapters.postgres.event_recorder import LedgerEventRecorder
from adapters.postgres.migrate import migrate
from adapters.postgres.store import PostgresViewStore
from ledger.application import JobLedger
from projections.queries.lag import view_status
from projections.registry import VIEWS
from tests.integration.test_event_recorder import event, recorder_of

pytestmark = pytest.mark.postgres

APPEND = sql.SQL(
    "SELECT * FROM {f}(%s::uuid[], %s::bigint[], %s::text[], %s::bytea[])"
).format(f=sql.Identifier(f"{EVENTS_TABLE}_append"))
ALL_IDS = sql.SQL("SELECT notification_id FROM {t} ORDER BY notification_id").format(
    t=sql.Identifier(EVENTS_TABLE)
)


def append_in(conn: psycopg.Connection[Any], count: int) -> list[int]:
    """Append ``count`` events of new streams in ``conn``'s open transaction."""
    ids = [uuid4() for _ in range(count)]
    rows = conn.execute(APPEND, (ids, [1] * count, ["tests:Event"] * count,
                                 [b"{}"] * count)).fetchall()  # fmt: skip
    return [int(r[0]) for r in rows]


def open_ledger(url: str) -> JobLedger:
    return JobLedger({**postgres_env(url), "POSTGRES_POOL_SIZE": "10"})


def test_an_append_does_not_wait_for_another_transactions_commit(postgres_url: str) -> None:
    """An append in a transaction left open does not hold the others back (with the old
    EXCLUSIVE lock the recorder's append waited 10 s and failed); readers stop before the
    open transaction's id until it commits, then read everything in order."""
    ledger = open_ledger(postgres_url)
    migrate(postgres_url)
    store = PostgresViewStore(postgres_url, EVENTS_TABLE)
    try:
        recorder = recorder_of(ledger)
        (before,) = recorder.insert_events([event(1)]) or []
        with psycopg.connect(postgres_url) as open_tx:
            (held,) = append_in(open_tx, 1)  # not committed yet
            after = list(recorder.insert_events([event(1), event(1)]) or [])
            assert held < after[0]
            # committed after the open one's id: not readable yet, and the head stops there
            assert [r[0] for r in store.read_events(0, 100)] == [before]
            assert store.head() == before
            assert [n.id for n in recorder.select_notifications(1, 100)] == [before]
            assert recorder.max_notification_id() == before
            # what /health reports: the two held back count in every view's lag
            status = view_status(store, [VIEWS["job_status"]])[0]
            assert (status.head, status.held_back, status.lag) == (before, 2, before + 2)
            open_tx.commit()
        assert [r[0] for r in store.read_events(before, 100)] == [held, *after]
        assert store.head() == after[-1]
        assert view_status(store, [VIEWS["job_status"]])[0].held_back == 0
    finally:
        store.close()
        ledger.close()


def test_a_transaction_that_had_its_id_before_appending_is_ordered_by_the_table_lock(
    postgres_url: str,
) -> None:
    """A transaction whose id was assigned before it appended (the application wrote
    first) takes the EXCLUSIVE lock: appends started after it wait for its commit, so no
    id below its own commits after it."""
    ledger = open_ledger(postgres_url)
    try:
        recorder = recorder_of(ledger)
        with psycopg.connect(postgres_url) as app:
            app.execute("SELECT pg_current_xact_id()")  # the application's own write
            (mine,) = append_in(app, 1)
            done: list[int] = []
            waiter = threading.Thread(
                target=lambda: done.extend(recorder.insert_events([event(1)]) or [])
            )
            waiter.start()
            waiter.join(1.0)
            assert done == []  # still waiting for the application's commit
            app.commit()
        waiter.join(30)
        assert done
        assert done[0] > mine
    finally:
        ledger.close()


# -- the hammer --------------------------------------------------------------------------


def process_writer(url: str, rounds: int, seed: int) -> None:
    """Appends from another process: mostly one-statement appends, some explicit
    transactions that sleep before committing or rolling back."""
    rng = random.Random(seed)
    with psycopg.connect(url, autocommit=True) as auto, psycopg.connect(url) as tx:
        for _ in range(rounds):
            if rng.random() < 0.7:
                append_in(auto, rng.randint(1, 4))
                continue
            append_in(tx, rng.randint(1, 3))
            time.sleep(rng.random() * 0.01)
            tx.rollback() if rng.random() < 0.3 else tx.commit()


class Follower:
    """A reader following the log by position, as the runner and dispatcher do."""

    def __init__(self, read: Callable[[int], list[int]]) -> None:
        self.read = read
        self.seen: list[int] = []

    def follow(self, done: threading.Event) -> None:
        position = 0
        while True:
            finished = done.is_set()
            page = self.read(position)
            self.seen.extend(page)
            if page:
                position = page[-1]
            elif finished:
                return
            else:
                time.sleep(0.002)


def test_readers_read_every_committed_event_once_in_order_under_concurrent_writers(
    postgres_url: str,
) -> None:
    ledger = open_ledger(postgres_url)
    recorder: LedgerEventRecorder = recorder_of(ledger)
    stores = [PostgresViewStore(postgres_url, EVENTS_TABLE) for _ in range(2)]
    def from_store(store: PostgresViewStore) -> Callable[[int], list[int]]:
        return lambda after: [row[0] for row in store.read_events(after, 50)]

    def from_recorder(after: int) -> list[int]:
        return [n.id for n in recorder.select_notifications(after, 50, inclusive_of_start=False)]

    followers = [*(Follower(from_store(s)) for s in stores), Follower(from_recorder)]
    rolled_back: list[int] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def guarded(work: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                work()
            except BaseException as error:  # the assertion below names it
                errors.append(error)
        return run

    def recorder_writer() -> None:
        for _ in range(120):
            recorder.insert_events([event(1) for _ in range(random.randint(1, 5))])

    def transaction_writer(seed: int) -> None:
        rng = random.Random(seed)
        with psycopg.connect(postgres_url) as conn:
            for _ in range(60):
                if rng.random() < 0.2:  # had its id before appending: the locked path
                    conn.execute("SELECT pg_current_xact_id()")
                ids = append_in(conn, rng.randint(1, 3))
                time.sleep(rng.random() * 0.005)
                if rng.random() < 0.3:
                    conn.rollback()
                    rolled_back.extend(ids)
                else:
                    conn.commit()

    def long_transaction() -> None:
        with psycopg.connect(postgres_url) as conn:
            append_in(conn, 3)
            time.sleep(1.5)  # commits late, long after appends with higher ids
            conn.commit()

    readers = [threading.Thread(target=guarded(functools.partial(f.follow, done)))
               for f in followers]  # fmt: skip
    writers = [
        *(threading.Thread(target=guarded(recorder_writer)) for _ in range(3)),
        *(threading.Thread(target=guarded(functools.partial(transaction_writer, s)))
          for s in range(3)),
        threading.Thread(target=guarded(long_transaction)),
    ]
    spawn = multiprocessing.get_context("spawn")
    processes = [spawn.Process(target=process_writer, args=(postgres_url, 150, s))
                 for s in range(2)]  # fmt: skip
    try:
        for thread in readers + writers:
            thread.start()
        for process in processes:
            process.start()
        for thread in writers:
            thread.join(120)
        for process in processes:
            process.join(120)
        done.set()
        for thread in readers:
            thread.join(60)
        assert errors == []
        assert [p.exitcode for p in processes] == [0, 0]
        with psycopg.connect(postgres_url) as conn:
            committed = [int(r[0]) for r in conn.execute(ALL_IDS).fetchall()]
        assert len(committed) > 1000
        assert not set(rolled_back) & set(committed)
        for follower in followers:
            assert follower.seen == committed  # each once, in position order, none skipped
    finally:
        done.set()
        for store in stores:
            store.close()
        ledger.close()
