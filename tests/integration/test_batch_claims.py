"""Claims in one round trip on the local queue in PostgreSQL (issue 19, ADR 155): up to N
visible messages received, their jobs' ``Claimed`` appended and the refused ones settled
in one transaction, in priority order, with the ``Queue`` aggregate still deciding
(paused, capped), a customer's scope kept, N bounded; a worker on it runs its jobs; a
claim whose worker dies before its handler leaves the job to the stale policy."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import anyio
import psycopg
import pytest

from adapters.local_queue.claims import FULL_DELAY, ClaimRequest
from adapters.local_queue.queue import LocalQueue
from adapters.postgres.claims import ADVISORY_LOCK, PostgresClaims
from adapters.service.backend import backend_for
from adapters.service.batching import BatchWriter
from adapters.service.queue_claims import QueueClaims, queue_claims_for
from adapters.worker import InProcessLedger, JobContext, Worker, WorkerConfig
from adapters.worker.report import Reporter
from ledger.application import JobLedger
from ledger.commands import (
    AnyCommand,
    CancelJob,
    CompleteJob,
    DetectStale,
    EnqueueJob,
    FailJob,
    PauseQueue,
    SetQueueLimit,
)
from ledger.errors import IllegalTransition, InvalidCommand, LedgerError
from ledger.ports.transport import JobMessage
from ledger.status import Status
from tests.support.ledgers import make_ledger, settings_for
from tests.support.log import recorded_head
from tests.support.workers import running

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Fixture:
    ledger: JobLedger
    queue: LocalQueue
    claims: QueueClaims
    url: str

    async def job(self, customer: str = "acme", queue: str = "default", priority: int = 0) -> UUID:
        job_id = self.ledger.execute(
            EnqueueJob(customer_id=customer, queue=queue, priority=priority), now()
        ).job_id
        if any(row[0] == str(job_id) for row in self.rows()):
            return job_id  # the enqueue wrote its message itself (the outbox, ADR 151)
        await self.queue.send(JobMessage(
            job_id=job_id, attempt=0, customer_id=customer, queue=queue,
            dedup_key=str(uuid.uuid4()), priority=priority,
        ))
        return job_id

    def request(self, limit: int, **fields: object) -> ClaimRequest:
        return ClaimRequest(worker_id="w1", limit=limit, visibility=30.0,
                            queue_name=self.queue.name, **fields)  # type: ignore[arg-type]

    def rows(self) -> list[tuple[str, int, bool]]:
        """(job id, receive count, visible now) of every message."""
        with psycopg.connect(self.url) as conn:
            return [(str(j), c, v) for j, c, v in conn.execute(
                "SELECT job_id, receive_count, visible_at <= extract(epoch from now()) "
                "FROM local_queue_messages ORDER BY seq").fetchall()]


@pytest.fixture
async def pg(tmp_path: Path, postgres_url: str) -> AsyncIterator[Fixture]:
    backend = backend_for(settings_for("postgres", tmp_path, postgres_url))
    backend.migrate()
    ledger = make_ledger("postgres", tmp_path, postgres_url)
    writer = BatchWriter(ledger, now).start()
    claims = queue_claims_for(ledger, writer, now)
    assert claims is not None
    queue = LocalQueue(backend.queue_store())
    try:
        yield Fixture(ledger, queue, claims, postgres_url)
    finally:
        await queue.aclose()
        writer.close()


async def test_claims_up_to_n_in_priority_order_in_one_call(pg: Fixture) -> None:
    low = [await pg.job(priority=0) for _ in range(3)]
    high = [await pg.job(priority=5) for _ in range(2)]
    first = await pg.claims.claim(pg.request(3))
    assert [UUID(c.job_id) for c in first] == [*high, low[0]]
    assert all(c.attempt == 1 for c in first)
    assert {pg.ledger.get_job(UUID(c.job_id)).status for c in first} == {Status.IN_PROGRESS}
    second = await pg.claims.claim(pg.request(3))
    assert [UUID(c.job_id) for c in second] == low[1:]
    assert await pg.claims.claim(pg.request(3)) == []
    assert all(count == 1 and not visible for _, count, visible in pg.rows())


async def test_a_paused_queue_is_refused_and_its_messages_handed_back_uncounted(
    pg: Fixture,
) -> None:
    pg.ledger.control_queue(PauseQueue(queue="emails", actor="cli:ana"), now())
    paused = await pg.job(queue="emails", priority=9)
    other = await pg.job(queue="default")
    claimed = await pg.claims.claim(pg.request(5))
    assert [UUID(c.job_id) for c in claimed] == [other]
    assert pg.ledger.get_job(paused).status == Status.PENDING
    row = next(r for r in pg.rows() if r[0] == str(paused))
    assert row[1] == 0  # the refused receive was undone: never dead-letters the job


async def test_a_capped_queue_gives_only_its_free_slots(pg: Fixture) -> None:
    pg.ledger.control_queue(SetQueueLimit(queue="emails", actor="cli:ana", max_running=2), now())
    for _ in range(4):
        await pg.job(queue="emails")
    claimed = await pg.claims.claim(pg.request(4))
    assert len(claimed) == 2
    assert sorted(count for _, count, _ in pg.rows()) == [0, 0, 1, 1]


async def test_an_obsolete_message_is_deleted_in_the_claims_transaction(pg: Fixture) -> None:
    cancelled = await pg.job()
    pg.ledger.execute(CancelJob(job_id=cancelled, actor="cli:ana"), now())
    kept = await pg.job()
    claimed = await pg.claims.claim(pg.request(5))
    assert [UUID(c.job_id) for c in claimed] == [kept]
    assert [job for job, _, _ in pg.rows()] == [str(kept)]


async def test_a_scoped_request_claims_only_its_customers_jobs(pg: Fixture) -> None:
    others = [await pg.job(customer="globex", priority=9) for _ in range(3)]
    mine = await pg.job(customer="acme")
    claimed = await pg.claims.claim(pg.request(10, customer_id="acme"))
    assert [UUID(c.job_id) for c in claimed] == [mine]
    assert all(pg.ledger.get_job(j).status == Status.PENDING for j in others)
    assert all(count == 0 for job, count, _ in pg.rows() if job != str(mine))


@pytest.mark.parametrize("limit", [0, 101, -1])
async def test_n_is_one_to_a_hundred(pg: Fixture, limit: int) -> None:
    with pytest.raises(InvalidCommand):
        await pg.claims.claim(pg.request(limit))


async def test_a_claimed_job_whose_worker_died_before_its_handler_goes_stale(
    pg: Fixture,
) -> None:
    job = await pg.job()
    (claimed,) = await pg.claims.claim(pg.request(1))  # and the worker is gone
    running_job = pg.ledger.get_job(job)
    assert running_job.status == Status.IN_PROGRESS
    later = now() + pg.ledger.stale_threshold + timedelta(seconds=1)
    pg.ledger.execute(DetectStale(job_id=job, attempt=claimed.attempt, detected_by="t"), later)
    assert pg.ledger.get_job(job).status == Status.PENDING


async def test_a_worker_claims_in_batches_and_runs_every_job(pg: Fixture) -> None:
    jobs = {await pg.job() for _ in range(12)}
    done: set[UUID] = set()

    async def handler(ctx: JobContext) -> str:
        done.add(ctx.job_id)
        return "ok"

    worker_deletes: list[object] = []
    store_delete = pg.queue.store.delete_many

    def counted(*args: object) -> list[bool]:
        worker_deletes.append(args)
        return store_delete(*args)  # type: ignore[arg-type]

    pg.queue.store.delete_many = counted  # type: ignore[method-assign,assignment]
    port = InProcessLedger(pg.ledger, clock=now)
    worker = Worker(handler, pg.queue, port, WorkerConfig(concurrency=4, worker_id="w-batch"))
    async with running(worker):
        await until(lambda: done == jobs and worker.stats.completed == len(jobs))
    await port.aclose()
    assert worker._claimer is not None
    assert worker._claimer.enabled
    assert {pg.ledger.get_job(j).status for j in jobs} == {Status.COMPLETED}
    await until(lambda: pg.rows() == [])
    assert worker_deletes == []  # each message went with its Completed, in its transaction


async def test_reports_in_one_call_delete_the_answered_ones_messages(pg: Fixture) -> None:
    for _ in range(4):
        await pg.job()
    done, stale, bad, other = await pg.claims.claim(pg.request(4))
    later = now() + pg.ledger.stale_threshold + timedelta(seconds=1)
    pg.ledger.execute(DetectStale(job_id=UUID(stale.job_id), attempt=1, detected_by="t"), later)
    reports: list[AnyCommand] = [
        CompleteJob(job_id=UUID(done.job_id), attempt=1, worker_id="w1", result={"n": 1}),
        CompleteJob(job_id=UUID(stale.job_id), attempt=1, worker_id="w1"),  # superseded
        FailJob(job_id=UUID(bad.job_id), attempt=1, worker_id="w1", error="\x00"),  # invalid
        FailJob(job_id=UUID(other.job_id), attempt=1, worker_id="w1", error="boom"),
    ]
    receipts = [(c.seq, c.receipt.partition(":")[2]) for c in (done, stale, bad, other)]
    results = await pg.claims.report(reports, receipts, pg.queue.name)
    assert [type(r).__name__ for r in results] == [
        "Outcome", "AttemptSuperseded", "InvalidText", "Outcome",
    ]
    assert pg.ledger.get_job(UUID(done.job_id)).status == Status.COMPLETED
    assert [job for job, _, _ in pg.rows()] == [bad.job_id]  # only the refused one's is kept


async def test_a_report_and_a_claim_waiting_together_share_one_transaction(
    pg: Fixture,
) -> None:
    pg.ledger.control_queue(SetQueueLimit(queue="emails", actor="cli:ana", max_running=1), now())
    first, second = [await pg.job(queue="emails") for _ in range(2)]
    (claimed,) = await pg.claims.claim(pg.request(2))
    assert UUID(claimed.job_id) == first  # the cap: one at a time
    pg.claims.writer.call(lambda: time.sleep(FULL_DELAY + 0.3))  # both requests queue up
    report = CompleteJob(job_id=first, attempt=1, worker_id="w1")
    receipt = (claimed.seq, claimed.receipt.partition(":")[2])
    before = recorded_head(pg.claims.claims.ledger.recorder)
    (result,), taken = await asyncio.gather(
        pg.claims.report([report], [receipt], pg.queue.name), pg.claims.claim(pg.request(2))
    )
    assert not isinstance(result, LedgerError)
    assert [UUID(c.job_id) for c in taken] == [second]  # the slot the report freed
    with psycopg.connect(pg.url) as conn:
        (transactions,) = conn.execute(  # type: ignore[misc]
            "SELECT count(DISTINCT transaction_id) FROM jobledger_events "
            "WHERE notification_id > %s", (before,)).fetchone()
    assert transactions == 1


async def test_a_claim_that_fails_before_its_commit_leaves_the_message_and_no_claimed(
    pg: Fixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    job = await pg.job()

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the server died here")

    monkeypatch.setattr(pg.claims.claims, "_settle_claims", crash)  # after the append
    with pytest.raises(RuntimeError):
        await pg.claims.claim(pg.request(5))
    monkeypatch.undo()
    assert pg.rows() == [(str(job), 0, True)]  # visible, its receive undone
    assert [type(e).__name__ for e in pg.ledger.history(job)] == ["Enqueued"]
    (claimed,) = await pg.claims.claim(pg.request(5))  # and the next claim takes it
    assert (UUID(claimed.job_id), claimed.attempt) == (job, 1)


async def test_no_snapshot_is_written_inside_a_claims_transaction(
    tmp_path: Path, postgres_url: str, pg: Fixture,
) -> None:
    ledger = make_ledger("postgres", tmp_path, postgres_url, snapshot_interval=2)
    writer = BatchWriter(ledger, now).start()
    claims = queue_claims_for(ledger, writer, now)
    assert claims is not None
    try:
        job = await pg.job()  # Enqueued is version 1: the claim's version 2 is due
        (claimed,) = await claims.claim(pg.request(1))
        assert claimed.attempt == 1
        assert ledger.snapshots is not None
        assert list(ledger.snapshots.get(job)) == []
        assert ledger.get_job(job).status == Status.IN_PROGRESS
    finally:
        writer.close()


async def test_a_message_another_claim_holds_is_skipped_and_the_append_takes_no_table_lock(
    pg: Fixture,
) -> None:
    held, free = await pg.job(), await pg.job()
    with psycopg.connect(pg.url) as other:  # another claim's transaction, still open
        (seq,) = other.execute("SELECT seq FROM local_queue_messages WHERE job_id = %s",
                               (held,)).fetchone()  # type: ignore[misc]  # fmt: skip
        other.execute("SELECT pg_advisory_xact_lock(%s, %s)", (ADVISORY_LOCK, seq))
        other.execute("LOCK TABLE jobledger_events IN ROW EXCLUSIVE MODE")  # an append in flight
        with anyio.fail_after(10):  # an EXCLUSIVE lock would wait for it
            claimed = await pg.claims.claim(pg.request(5))
        assert [UUID(c.job_id) for c in claimed] == [free]
        other.rollback()
    assert [UUID(c.job_id) for c in await pg.claims.claim(pg.request(5))] == [held]


async def test_a_report_whose_transaction_failed_is_sent_again(
    pg: Fixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The claims' transaction translates psycopg's errors into the store's (ledger errors);
    the in-process port passed those through, and the reporter retries only
    ``LedgerUnavailable``: the batch's reports were given up at once, their jobs left
    running with no worker until the stale threshold (10 minutes by default)."""
    jobs = {await pg.job() for _ in range(3)}
    failures: list[int] = []
    delete_reported = PostgresClaims._delete_reported

    def fails_once(self: PostgresClaims, conn: Any, reports: Any, results: Any) -> None:
        if reports and not failures:  # inside the transaction: it rolls back
            failures.append(len(reports[0].commands))
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        delete_reported(self, conn, reports, results)

    monkeypatch.setattr(PostgresClaims, "_delete_reported", fails_once)

    async def handler(ctx: JobContext) -> str:
        return "ok"

    port = InProcessLedger(pg.ledger, clock=now)
    worker = Worker(handler, pg.queue, port, WorkerConfig(concurrency=3, worker_id="w-retry"))
    async with running(worker):
        await until(lambda: worker.stats.completed == len(jobs))
    await port.aclose()
    assert failures  # a report's transaction failed
    assert {pg.ledger.get_job(j).status for j in jobs} == {Status.COMPLETED}
    assert pg.rows() == []  # every message went with its Completed


async def test_a_caller_that_gave_up_is_left_out_and_the_others_are_answered(
    pg: Fixture,
) -> None:
    """A worker's call times out (InProcessLedger's call_timeout) while its request waits
    for the writer: the drain ran it anyway, and its cancelled future's set_result raised,
    so the requests after it in the drain were committed and never answered (a claim's
    jobs left in_progress with no worker until the stale threshold)."""
    first, second = await pg.job(), await pg.job()
    (claimed,) = await pg.claims.claim(pg.request(1))
    assert UUID(claimed.job_id) == first
    pg.claims.writer.call(lambda: time.sleep(0.5))  # both requests queue up behind it
    report = CompleteJob(job_id=first, attempt=1, worker_id="w1")
    receipt = (claimed.seq, claimed.receipt.partition(":")[2])
    taken: list[object] = []

    async def claim_later() -> None:
        await anyio.sleep(0.05)  # queued after the report
        taken.extend(await pg.claims.claim(pg.request(1)))

    async with anyio.create_task_group() as tg:
        tg.start_soon(claim_later)
        with anyio.move_on_after(0.2):  # the report's caller gives up
            await pg.claims.report([report], [receipt], pg.queue.name)
        with anyio.fail_after(20):
            while not taken:
                await anyio.sleep(0.02)
    assert [UUID(c.job_id) for c in taken] == [second]  # type: ignore[attr-defined]
    assert pg.ledger.get_job(first).status == Status.IN_PROGRESS  # its report is sent again


async def test_two_claims_in_one_transaction_take_different_messages(pg: Fixture) -> None:
    """The claims of one drain share a session, whose advisory locks it takes again: the
    second claim took the first one's messages, its claims were refused as not pending and
    those messages deleted under the jobs just started, and it got none of the others."""
    jobs = [await pg.job() for _ in range(3)]
    _, claimed = pg.claims.claims.run([], [pg.request(1), pg.request(2)], now(), time.time())
    assert [[UUID(c.job_id) for c in each] for each in claimed] == [jobs[:1], jobs[1:]]
    assert [(job, count) for job, count, _ in pg.rows()] == [(str(j), 1) for j in jobs]


async def test_the_job_a_failed_report_claimed_next_still_runs(
    pg: Fixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A report and the claim for the slot it frees commit together; when the report's
    end raised in the worker (an answer the reporter does not handle), the job claimed for
    the slot was dropped with it: in_progress with no worker until the stale threshold."""
    first, second = await pg.job(), await pg.job()  # one slot: the second is claimed
    settle = Reporter.settle                           # by the first one's report
    raised: list[UUID] = []

    async def settles_then_raises(self: Reporter, run: Any, outcome: Any) -> None:
        await settle(self, run, outcome)
        if not raised:
            raised.append(run.ctx.job_id)
            raise IllegalTransition(run.ctx.job_id, "completed", "complete")

    monkeypatch.setattr(Reporter, "settle", settles_then_raises)
    ran: list[UUID] = []

    async def handler(ctx: JobContext) -> str:
        ran.append(ctx.job_id)
        return "ok"

    port = InProcessLedger(pg.ledger, clock=now)
    worker = Worker(handler, pg.queue, port, WorkerConfig(concurrency=1, worker_id="w-next"))
    async with running(worker):
        await until(lambda: pg.ledger.get_job(second).status == Status.COMPLETED)
    await port.aclose()
    assert raised == [ran[0]]
    assert sorted(map(str, ran)) == sorted([str(first), str(second)])


async def until(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.02)
