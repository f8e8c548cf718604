"""Issue 13: no command puts text into the log that a store, a view or SQS cannot hold.

The ledger itself refuses (a named error naming the field) whatever entry point built the
command; a worker normalises its handler's error text instead, and says so in the event.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import anyio
import pytest

from adapters.memory.queue import MemoryQueueStore, memory_transport
from adapters.service.bootstrap import utc_now
from adapters.worker import InProcessLedger, JobContext, Worker, WorkerConfig
from ledger.application import JobLedger
from ledger.commands import (
    AnyCommand,
    ClaimJob,
    CompleteJob,
    EnqueueJob,
    FailJob,
    RecordAlert,
    RedriveJob,
)
from ledger.errors import InvalidCommand
from ledger.job import Job
from ledger.policies.retry import RetryPolicy
from ledger.ports.transport import JobMessage
from ledger.status import Status

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def ledger() -> JobLedger:
    return JobLedger(
        {"PERSISTENCE_MODULE": "eventsourcing.popo"}, retry_policy=RetryPolicy(0, 0),
        draw=lambda: 0.5,
    )


def claimed(ledger: JobLedger) -> UUID:
    job_id: UUID = ledger.execute(EnqueueJob(customer_id="acme"), NOW).job_id
    ledger.execute(ClaimJob(job_id=job_id, worker_id="w1"), NOW)
    return job_id


REPORTS: list[tuple[str, Callable[[UUID], AnyCommand]]] = [
    ("error", lambda j: FailJob(job_id=j, attempt=1, worker_id="w1", error="boom\x00x")),
    ("error", lambda j: FailJob(job_id=j, attempt=1, worker_id="w1", error="lone \ud800")),
    ("error", lambda j: FailJob(job_id=j, attempt=1, worker_id="w1", error="bell \x07")),
    ("error", lambda j: FailJob(job_id=j, attempt=1, worker_id="w1", error="\uffff")),
    ("worker_id", lambda j: FailJob(job_id=j, attempt=1, worker_id="w\ud800", error="x")),
    ("result.a[1]", lambda j: CompleteJob(
        job_id=j, attempt=1, worker_id="w1", result={"a": ["ok", "x\x00"]})),
    ("result", lambda j: CompleteJob(job_id=j, attempt=1, worker_id="w1", result={"k\x00": 1})),
]


@pytest.mark.parametrize(("field", "make"), REPORTS)
def test_the_ledger_refuses_a_report_with_unstorable_text(
    ledger: JobLedger, field: str, make: Callable[[UUID], AnyCommand]
) -> None:
    job_id = claimed(ledger)
    with pytest.raises(InvalidCommand) as caught:
        ledger.execute(make(job_id), NOW)
    assert caught.value.code == "invalid_text"
    assert str(caught.value).startswith(f"{field}: ")
    assert [type(e).__name__ for e in ledger.history(job_id)] == ["Enqueued", "Claimed"]


ENQUEUES: list[tuple[str, dict[str, Any]]] = [
    ("customer_id", {"customer_id": "a\ud800b"}),
    ("customer_id", {"customer_id": "a\ufffeb"}),
    ("idempotency_key", {"customer_id": "acme", "idempotency_key": "k\ud83d"}),
    ("payload.k", {"customer_id": "acme", "payload": {"k": "v\x00"}}),
    ("payload", {"customer_id": "acme", "payload": {"a\x00": "b"}}),
    ("payload[0][0][0]", {"customer_id": "acme", "payload": [[["\x1b[31m"]]]}),
    ("payload", {"customer_id": "acme", "payload": "\udfff"}),
]


@pytest.mark.parametrize(("field", "body"), ENQUEUES)
def test_the_ledger_refuses_an_enqueue_with_unstorable_text(
    ledger: JobLedger, field: str, body: dict[str, Any]
) -> None:
    with pytest.raises(InvalidCommand) as caught:
        ledger.execute(EnqueueJob(**body), NOW)
    assert caught.value.code == "invalid_text"
    assert str(caught.value).startswith(f"{field}: ")
    assert "\x00" not in str(caught.value)
    str(caught.value).encode()  # the message itself is printable UTF-8


def test_operators_and_alerts_are_held_to_the_same_rule(ledger: JobLedger) -> None:
    job_id = ledger.execute(EnqueueJob(customer_id="acme", max_attempts=1), NOW).job_id
    ledger.execute(ClaimJob(job_id=job_id, worker_id="w1"), NOW)
    version = ledger.execute(
        FailJob(job_id=job_id, attempt=1, worker_id="w1", error="plain"), NOW
    ).version
    for command in (
        RecordAlert(job_id=job_id, dead_letter_version=version, channel="slack",
                    failure="HTTP 400: \x00"),
        RedriveJob(job_id=job_id, actor="ops\ud800"),
    ):
        with pytest.raises(InvalidCommand) as caught:
            ledger.execute(command, NOW)
        assert caught.value.code == "invalid_text"


def test_tabs_newlines_and_every_plane_are_kept_byte_for_byte(ledger: JobLedger) -> None:
    text = "line 1\n\tline 2\r\n\u00e9\u200b\ue000\ufffd\U0001f600\U0010fffd\x7f\x85"
    job_id = claimed(ledger)
    ledger.execute(FailJob(job_id=job_id, attempt=1, worker_id="w1", error=text), NOW)
    assert ledger.get_job(job_id).last_error == text


# -- the worker normalises its handler's error instead ------------------------------------



@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def port() -> AsyncIterator[InProcessLedger]:
    ledger = JobLedger(
        {"PERSISTENCE_MODULE": "eventsourcing.popo"}, stale_threshold=timedelta(seconds=5),
        retry_policy=RetryPolicy(0, 0), draw=lambda: 0.5,
    )
    port = InProcessLedger(ledger, clock=utc_now)
    try:
        yield port
    finally:
        await port.aclose()
        ledger.close()


async def _run_until_failed(port: InProcessLedger, handler: Callable[..., Any]) -> Job:
    ledger = port.ledger
    job_id = ledger.execute(EnqueueJob(customer_id="acme", max_attempts=1), utc_now()).job_id
    transport = memory_transport(MemoryQueueStore(), poll_interval=0.01)
    await transport.send(JobMessage(
        job_id=job_id, attempt=0, customer_id="acme", dedup_key=f"{job_id}:1",
    ))
    worker = Worker(handler, transport, port, WorkerConfig(
        worker_id="w1", heartbeat_interval=0.05, receive_wait=0.2,
    ))
    async with anyio.create_task_group() as tg:
        await tg.start(worker.run)
        with anyio.fail_after(5):
            while ledger.get_job(job_id).status != Status.DEAD_LETTERED:
                await anyio.sleep(0.01)
        worker.drain()
    return ledger.get_job(job_id)


@pytest.mark.anyio
@pytest.mark.parametrize("plain", [True, False])
async def test_a_handler_error_with_unstorable_text_is_normalised_and_marked(
    port: InProcessLedger, plain: bool
) -> None:
    def fails(ctx: JobContext) -> None:
        raise RuntimeError("boom\x00x \ud800 " + "y" * 5000)

    async def fails_async(ctx: JobContext) -> None:
        fails(ctx)

    job = await _run_until_failed(port, fails if plain else fails_async)
    (failed,) = [e for e in port.ledger.history(job.id) if isinstance(e, Job.Failed)]
    assert failed.error.startswith("RuntimeError: boom\ufffdx \ufffd yyy")
    assert len(failed.error) <= 2000
    assert failed.error_normalised is True
    assert job.last_error == failed.error


@pytest.mark.anyio
async def test_a_plain_handler_error_is_recorded_unmarked(port: InProcessLedger) -> None:
    def fails(ctx: JobContext) -> None:
        raise ValueError("tab\there, newline\nthere, \U0001f600")

    job = await _run_until_failed(port, fails)
    (failed,) = [e for e in port.ledger.history(job.id) if isinstance(e, Job.Failed)]
    assert failed.error == "ValueError: tab\there, newline\nthere, \U0001f600"
    assert failed.error_normalised is False


@pytest.mark.anyio
async def test_a_result_with_unstorable_text_fails_the_attempt_legibly(
    port: InProcessLedger,
) -> None:
    job = await _run_until_failed(port, lambda ctx: {"out": "x\x00"})
    assert (job.last_error or "").startswith("the result was refused: result.out: ")
    assert "\x00" not in (job.last_error or "")


@pytest.mark.parametrize("worker_id", ["w\x00", "w\ud800", "w\n1", "\uffff"])
def test_a_worker_id_the_ledger_cannot_store_is_refused_at_start(worker_id: str) -> None:
    with pytest.raises(ValueError, match="worker_id"):
        WorkerConfig(worker_id=worker_id)
