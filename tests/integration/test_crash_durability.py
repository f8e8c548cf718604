"""What a PostgreSQL crash (``pg_ctl stop -m immediate``: no shutdown checkpoint, no flush
of pending WAL) may and may not lose, per ADR 6.

- Appends to the log and messages put on the local queue are acknowledged only once on
  disk: every acknowledged one is there after the crash.
- The views and their tracking positions commit asynchronously: the last commits may be
  lost, but always together, so the runner re-applies what was lost and each view equals
  a fresh fold of the log (exactly once).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from uuid import UUID, uuid4

import psycopg
import pytest

from adapters.postgres.backend import postgres_env
from adapters.postgres.local_queue import PostgresQueueStore
from adapters.postgres.migrate import migrate
from adapters.service.backend import backend_for
from adapters.service.bootstrap import build, utc_now
from adapters.service.settings import Settings
from ledger.application import JobLedger
from ledger.commands import ClaimJob, EnqueueJob
from ledger.ports.queue_store import NewMessage
from projections.registry import VIEWS
from projections.runner import Runner
from tests.support.pg import PostgresServer
from tests.support.projection_env import reference_tables, store_tables

pytestmark = pytest.mark.postgres

RUN_SECONDS = 1.5
ALL = list(VIEWS.values())


def crashable(server: PostgresServer) -> None:
    if not server.supports_restart:
        pytest.skip("this PostgreSQL cannot be stopped by the tests")


def keep_going(work: object, stop: threading.Event, acked: list[object]) -> threading.Thread:
    """Call ``work()`` until ``stop``; what it returns before failing is acknowledged."""

    def loop() -> None:
        while not stop.is_set():
            try:
                acked.append(work())  # type: ignore[operator]
            except Exception:  # the crash: what was in flight is not acknowledged
                return

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def test_every_acknowledged_append_and_put_survives_a_crash(
    postgres_server: PostgresServer, postgres_url: str,
) -> None:
    crashable(postgres_server)
    migrate(postgres_url)
    ledger = JobLedger({**postgres_env(postgres_url), "POSTGRES_POOL_SIZE": "2"})
    queue = PostgresQueueStore(postgres_url)
    stop = threading.Event()
    jobs: list[object] = []
    messages: list[object] = []

    def append() -> UUID:
        return ledger.execute(EnqueueJob(customer_id="crash"), utc_now()).job_id

    def put() -> str:
        message_id = str(uuid4())
        now = time.time()
        queue.put("default", [NewMessage(message_id=message_id, job_id=str(uuid4()),
                                         attempt=1, body="{}", sent_at=now, visible_at=now)])
        return message_id

    try:
        threads = [keep_going(append, stop, jobs), keep_going(put, stop, messages)]
        time.sleep(RUN_SECONDS)
        postgres_server.stop("immediate")  # while both are writing
        stop.set()
        postgres_server.start()  # calls caught in their retries finish, then they stop
        for thread in threads:
            thread.join(30)
    finally:
        queue.close()
        ledger.close()

    assert len(jobs) > 50
    assert len(messages) > 50
    with psycopg.connect(postgres_url) as conn:
        stored_jobs = {row[0] for row in conn.execute(
            "SELECT originator_id FROM jobledger_events WHERE originator_version = 1"
        ).fetchall()}
        stored_messages = {str(row[0]) for row in conn.execute(
            "SELECT message_id FROM local_queue_messages"
        ).fetchall()}
    assert set(jobs) <= stored_jobs
    assert set(messages) <= stored_messages


def test_views_lose_only_whole_pages_in_a_crash_and_catch_up_exactly_once(
    postgres_server: PostgresServer, postgres_url: str, tmp_path: Path,
) -> None:
    crashable(postgres_server)
    settings = Settings(database_url=postgres_url, ledger_data_dir=tmp_path / "data")
    container = build(settings)
    ledger = container.ledger
    for _ in range(40):
        outcomes = ledger.execute_batch(
            [EnqueueJob(customer_id=f"c{i % 3}") for i in range(25)], utc_now()
        )
        ledger.execute_batch(
            [ClaimJob(job_id=o.job_id, worker_id="w") for o in outcomes[::2]  # type: ignore[union-attr]
             ], utc_now(),
        )
    container.close()

    store = backend_for(settings).open_views()
    runner = Runner(store, ALL, page_size=7)
    assert runner.acquire() == list(VIEWS)
    stop = threading.Event()

    def feed() -> None:
        while not stop.is_set():
            try:
                if runner.catch_up() == 0:
                    return
            except Exception:  # the crash
                return

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    time.sleep(0.3)  # some pages in
    postgres_server.stop("immediate")
    stop.set()
    feeder.join(30)
    store.close()
    postgres_server.start()

    store = backend_for(settings).open_views()
    try:
        positions = {v: store.tracking(v).position for v in VIEWS}
        for view in ALL:  # whatever survived is consistent with its position
            assert store_tables(store, view) == reference_tables(
                store, view, positions[view.name]
            ), view.name
        runner = Runner(store, ALL, page_size=50)
        assert runner.acquire() == list(VIEWS)
        runner.catch_up()
        head = store.head()
        for view in ALL:  # and the catch-up applied the rest once
            assert store.tracking(view.name).position == head
            assert store_tables(store, view) == reference_tables(store, view, head), view.name
    finally:
        store.close()
