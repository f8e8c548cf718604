"""The in-process client (``Client.local``) on SQLite and PostgreSQL, and enqueue within
the application's own PostgreSQL transaction (``LocalClient.enqueue_in``): a rolled-back
transaction leaves no job, a committed one is dispatched from the log."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import anyio
import psycopg
import pytest

from adapters.service.bootstrap import build_transport, utc_now
from adapters.service.dispatcher import Dispatcher
from job_ledger import AsyncClient, Client, JobRequest, LocalClient, WaitTimedOut
from job_ledger.errors import TransactionalEnqueueUnsupported
from ledger.commands import ClaimJob, CompleteJob
from ledger.errors import (
    IdempotencyConflict,
    IllegalTransition,
    InvalidCommand,
    InvalidText,
    JobNotFound,
)

stores = pytest.mark.parametrize(
    "store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


@pytest.fixture
def local(store: str, store_url: str | None, tmp_path: Path) -> Iterator[LocalClient]:
    with Client.local(tmp_path / "data", database_url=store_url, customer_id="acme") as client:
        yield client


@stores
def test_each_method_in_process(local: LocalClient) -> None:
    job = local.enqueue({"invoice": 1}, queue="emails", priority=3, idempotency_key="inv-1")
    again = local.enqueue({"invoice": 1}, queue="emails", priority=3, idempotency_key="inv-1")
    many = local.enqueue_many([JobRequest(payload=n) for n in range(20)])
    state = local.get(str(job.job_id))
    assert (job.created, again.created, again.job_id) == (True, False, job.job_id)
    assert (state.status, state.queue, state.priority) == ("pending", "emails", 3)
    assert len({m.job_id for m in many}) == 20
    assert [e.type for e in local.history(job.job_id)] == ["Enqueued"]
    assert local.enqueue(delay=60).status == "scheduled"
    assert local.cancel(job.job_id, reason="test").status == "cancelled"
    assert [e.type for e in local.history(job.job_id)] == ["Enqueued", "Cancelled"]
    with pytest.raises(IllegalTransition):
        local.cancel(job.job_id)


@stores
def test_errors_in_process_are_the_ledgers(local: LocalClient) -> None:
    local.enqueue({"v": 1}, idempotency_key="same")
    with pytest.raises(IdempotencyConflict):
        local.enqueue({"v": 2}, idempotency_key="same")
    with pytest.raises(InvalidCommand):
        local.enqueue(priority=500)
    with pytest.raises(InvalidText):
        local.enqueue({"a": "\x00"})
    with pytest.raises(JobNotFound):
        local.get("00000000-0000-0000-0000-000000000001")
    with pytest.raises(InvalidCommand, match=r"jobs\[1\]"):
        local.enqueue_many([JobRequest(idempotency_key="first"), JobRequest(delay=1,
                                                                        run_at=utc_now())])
    with pytest.raises(JobNotFound):  # the batch was refused whole
        local.get(_id("first"))


@stores
def test_wait_in_process(local: LocalClient) -> None:
    job = local.enqueue()
    began = time.monotonic()
    with pytest.raises(WaitTimedOut):
        local.wait(job.job_id, timeout=0.2)
    assert time.monotonic() - began < 2
    ledger = local.container.ledger
    claimed = ledger.execute(ClaimJob(job_id=job.job_id, worker_id="w"), utc_now())
    ledger.execute(
        CompleteJob(job_id=job.job_id, attempt=claimed.attempt, worker_id="w"), utc_now()
    )
    assert local.wait(job.job_id, timeout=5).status == "completed"


def test_the_async_local_client(tmp_path: Path) -> None:
    async def main() -> None:
        async with AsyncClient.local(tmp_path, customer_id="acme") as client:
            job = await client.enqueue({"n": 1})
            assert (await client.get(job.job_id)).status == "pending"
            assert len(await client.enqueue_many([JobRequest(), JobRequest()])) == 2
            assert (await client.cancel(job.job_id)).status == "cancelled"
            assert (await client.wait(job.job_id, timeout=1)).terminal

    anyio.run(main)


def test_transactional_enqueue_needs_postgresql(tmp_path: Path) -> None:
    with Client.local(tmp_path, customer_id="acme") as local, \
            pytest.raises(TransactionalEnqueueUnsupported):
        local.enqueue_in(object())


@pytest.mark.postgres
def test_a_rolled_back_transaction_leaves_no_job(postgres_url: str, tmp_path: Path) -> None:
    with Client.local(tmp_path, database_url=postgres_url, customer_id="acme") as local:
        with psycopg.connect(postgres_url) as conn:
            conn.execute("CREATE TABLE orders (id int primary key)")
            conn.commit()
            conn.execute("INSERT INTO orders VALUES (1)")
            job = local.enqueue_in(conn, {"order": 1}, queue="emails")
            conn.rollback()
            assert conn.execute("SELECT count(*) FROM orders").fetchone() == (0,)
        with pytest.raises(JobNotFound):
            local.get(job.job_id)
        assert _dispatched(local) == []


@pytest.mark.postgres
def test_a_committed_transaction_enqueues_and_is_dispatched(
    postgres_url: str, tmp_path: Path
) -> None:
    with Client.local(tmp_path, database_url=postgres_url, customer_id="acme") as local:
        before = local.enqueue()  # the ledger appends on its own before and after
        with psycopg.connect(postgres_url) as conn:
            conn.execute("CREATE TABLE orders (id int primary key)")
            conn.execute("INSERT INTO orders VALUES (1)")
            job = local.enqueue_in(conn, {"order": 1}, queue="emails", idempotency_key="o-1")
            same = local.enqueue_in(conn, {"order": 1}, queue="emails", idempotency_key="o-1")
            with pytest.raises(IdempotencyConflict):
                local.enqueue_in(conn, {"order": 2}, queue="emails", idempotency_key="o-1")
            assert conn.execute("SHOW lock_timeout").fetchone() == ("0",)
        after = local.enqueue()
        state = local.get(job.job_id)
        replay = local.enqueue({"order": 1}, queue="emails", idempotency_key="o-1")
        assert (job.created, same.created, same.job_id) == (True, False, job.job_id)
        assert (state.status, state.queue) == ("pending", "emails")
        assert (replay.created, replay.job_id) == (False, job.job_id)
        # before and after went to the queue with their events (the outbox, ADR 151), the
        # job enqueued in the application's transaction through the dispatcher
        dispatched = {str(job_id) for job_id in _dispatched(local)}
        assert dispatched == {str(before.job_id), str(job.job_id), str(after.job_id)}


def _dispatched(local: LocalClient) -> list[object]:
    container = local.container
    transport = build_transport(container.settings, container.backend)
    store = container.backend.open_views()
    dispatcher = Dispatcher(store, container.ledger, transport, clock=utc_now, owner="t")

    async def main() -> list[object]:
        while await dispatcher.step():
            pass
        got = await transport.receive(max_messages=10, wait_seconds=0.2)
        await transport.aclose()
        return [received.message.job_id for received in got]

    try:
        return anyio.run(main)
    finally:
        store.close()


def _id(key: str) -> UUID:
    from ledger.job_ids import idempotent_job_id

    return idempotent_job_id("acme", key)
