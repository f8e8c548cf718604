"""One job's trace, from the producer's span to the handler's (issue 18, ADR 125).

A producer enqueues through the client library inside its own span; a worker killed
before reporting leaves attempt 1 silent, the stale monitor requeues it; the SDK worker's
attempt 2 fails and is retried; attempt 3 completes. With the SDK's in-memory exporter
every span of the journey is in the producer's trace: the ledger's ``job.enqueued``,
``job.dispatch``, ``job.stale_detected`` and both ``job.requeued`` decisions and each
``job.attempt`` are children of the producer's span, heartbeats are events of the
attempt, a span the handler opens is a child of its attempt's span, and the decision log
lines (stale, requeued, failed, completed) carry the trace id. Over HTTP and
in-process, async and plain handlers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from uuid import UUID

import anyio
import psycopg
import pytest
from opentelemetry import trace

from adapters.http.wiring import build_http
from adapters.service.bootstrap import Container, build, build_transport, utc_now
from adapters.service.parts import dispatcher_part, projection_part, stale_part
from adapters.service.settings import Settings
from adapters.worker import HttpLedger, InProcessLedger, JobContext, Worker, WorkerConfig
from adapters.worker.port import LedgerPort
from job_ledger import Client
from ledger.access import Role, new_key
from ledger.commands import ClaimJob
from ledger.status import Status
from tests.support.http import serve_in_thread
from tests.support.tracing import memory_exporter, named, parent_id

SHORT = {
    "stale_threshold_minutes": 0.01,  # 0.6 s
    "check_interval_seconds": 0.2,
    "retry_base_delay_seconds": 0.0,
    "retry_max_delay_seconds": 0.0,
}


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Container]:
    wired = build(replace(Settings(ledger_data_dir=tmp_path / "data"), **SHORT))  # type: ignore[arg-type]
    yield wired
    wired.close()


def handler_for(kind: str) -> Any:
    tracer = trace.get_tracer("the-application")

    def work(ctx: JobContext) -> str:
        if ctx.attempt == 2:
            raise RuntimeError("smtp refused")
        with tracer.start_as_current_span("send-invoice"):
            time.sleep(0.35)  # heartbeats every 0.1 s meanwhile
        return "sent"

    async def async_work(ctx: JobContext) -> str:
        if ctx.attempt == 2:
            raise RuntimeError("smtp refused")
        with tracer.start_as_current_span("send-invoice"):
            await anyio.sleep(0.35)
        return "sent"

    return async_work if kind == "async" else work


def port_for(container: Container, how: str, base_url: str) -> LedgerPort:
    if how == "inprocess":
        return InProcessLedger(container.ledger, clock=utc_now)
    key, record = new_key(Role.WORKER, None, None, utc_now())
    container.backend.key_store().add(record)
    return HttpLedger(base_url, key, call_timeout=5)


def run_fleet(container: Container, port: LedgerPort, handler: Any, job_id: UUID) -> None:
    transport = build_transport(container.settings, container.backend)
    worker = Worker(handler, transport, port, WorkerConfig(
        heartbeat_interval=0.1, receive_wait=0.1, worker_id="sdk-w1", grace=5,
    ))

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            for part in (projection_part(container, poll_interval=0.05), stale_part(container),
                         dispatcher_part(container, transport), worker.run):
                await tg.start(part)
            with anyio.fail_after(30):
                while container.ledger.get_job(job_id).status != Status.COMPLETED:
                    await anyio.sleep(0.05)
            worker.drain()
            await anyio.sleep(0.3)
            tg.cancel_scope.cancel()
        await port.aclose()
        await transport.aclose()

    anyio.run(main)


@pytest.mark.parametrize("how", ["inprocess", "http"])
@pytest.mark.parametrize("kind", ["async", "plain"])
def test_one_jobs_trace_from_the_producers_span_to_the_handlers(
    container: Container, how: str, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    check_journey(container, how, kind, caplog)


@pytest.mark.postgres
def test_the_same_trace_on_postgresql_where_the_outbox_sends_the_message(
    postgres_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With the local queue's outbox (ADR 151) the enqueue's transaction writes the queue
    row and the dispatcher sends nothing: it still makes the ``job.dispatch`` span, once,
    dated at the enqueue's event."""
    settings = Settings(ledger_data_dir=tmp_path / "data", database_url=postgres_url)
    container = build(replace(settings, **SHORT))  # type: ignore[arg-type]
    try:
        assert container.ledger.outbox is not None
        journey = check_journey(container, "http", "plain", caplog)
    finally:
        container.close()
    (dispatch,) = named(journey, "job.dispatch")
    (enqueued,) = named(journey, "job.enqueued")
    assert dispatch.kind == trace.SpanKind.PRODUCER
    assert dispatch.start_time == dispatch.end_time
    assert dispatch.start_time is not None
    assert enqueued.start_time is not None
    assert abs(dispatch.start_time - enqueued.start_time) < 1_000_000_000  # within 1 s


def check_journey(
    container: Container, how: str, kind: str, caplog: pytest.LogCaptureFixture
) -> list[Any]:
    """Run the issue's journey and check its trace; the ledger's spans of the journey."""
    caplog.set_level(logging.INFO)
    exporter = memory_exporter()
    key, record = new_key(Role.SERVICE, "acme", None, utc_now())
    container.backend.key_store().add(record)
    with serve_in_thread(build_http(container)) as api:
        producer = trace.get_tracer("the-application").start_as_current_span("producer")
        with Client(api.base_url, api_key=key, customer_id="acme") as client, producer:
            job = client.enqueue({"invoice": 42}, max_attempts=5)
        # attempt 1: a worker that claims and dies (never heartbeats, never reports)
        container.ledger.execute(ClaimJob(job_id=job.job_id, worker_id="doomed"), utc_now())
        run_fleet(container, port_for(container, how, api.base_url), handler_for(kind),
                  job.job_id)
    spans = exporter.get_finished_spans()
    root_span = named(spans, "producer")[0]
    trace_id, root = root_span.context.trace_id, root_span.context.span_id
    journey = [s for s in spans if s.name.startswith("job.")]
    assert {s.context.trace_id for s in journey} == {trace_id}
    assert {parent_id(s) for s in journey} == {root}  # every step is a child of the producer
    names = [s.name for s in journey]
    for name in ("job.enqueued", "job.dispatch", "job.stale_detected"):
        assert names.count(name) == 1, names
    requeued = {(s.attributes or {}).get("job.reason") for s in named(journey, "job.requeued")}
    assert requeued == {"stale", "failed"}
    attempts = {int(str((s.attributes or {})["job.attempt"])): s
                for s in named(journey, "job.attempt")}
    assert sorted(attempts) == [2, 3]
    failed, done = attempts[2], attempts[3]
    assert failed.status.status_code == trace.StatusCode.ERROR
    assert any(e.name == "exception" for e in failed.events)
    assert (done.attributes or {})["job.status"] == "completed"
    assert sum(e.name == "heartbeat" for e in done.events) >= 1
    handler_span = named(spans, "send-invoice")[0]
    assert handler_span.context.trace_id == trace_id
    assert parent_id(handler_span) == done.context.span_id
    decisions = [getattr(r, "decision", None) for r in caplog.records]
    logged = [(d["event"], d["attempt"]) for d in decisions
              if d is not None and d["trace_id"] == f"{trace_id:032x}"]
    for expected in [("stale_detected", 1), ("requeued", 1), ("failed", 2), ("requeued", 2),
                     ("completed", 3)]:
        assert expected in logged, logged
    return journey


@pytest.mark.postgres
def test_an_enqueue_in_the_applications_transaction_keeps_its_span(
    postgres_url: str, tmp_path: Path
) -> None:
    memory_exporter()
    with Client.local(tmp_path, database_url=postgres_url, customer_id="acme") as local, \
            psycopg.connect(postgres_url) as conn, \
            trace.get_tracer("the-application").start_as_current_span("checkout") as span:
        job = local.enqueue_in(conn, {"order": 1})
        conn.commit()
        stored = local.container.ledger.get_job(job.job_id).traceparent
    context = span.get_span_context()
    assert stored == f"00-{context.trace_id:032x}-{context.span_id:016x}-" \
        f"{int(context.trace_flags):02x}"
