"""``POST /workers/cancels`` and the SDK's poll of it (issue 14, ADR 100), on SQLite and
PostgreSQL over a real HTTP server: a worker connected over HTTP learns of a cancel
within about a second, not at its next heartbeat (30 s here), and the route answers only
the named attempts that run with a cancel request, of the key's own customer."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import anyio
import httpx
import pytest

from adapters.http.wiring import build_http
from adapters.service.bootstrap import Container, build, build_transport, utc_now
from adapters.service.settings import Settings
from adapters.worker import HttpLedger, JobContext, Worker, WorkerConfig
from ledger.access import Role, new_key
from ledger.commands import CancelJob, ClaimJob, EnqueueJob
from ledger.job import Job
from ledger.ports.transport import JobMessage
from ledger.status import Status
from tests.support.http import projections_running, serve_in_thread, wait_for
from tests.support.log import recorded_head
from tests.support.workers import running


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def container(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Container]:
    url = str(request.getfixturevalue("postgres_url")) if request.param == "postgres" else None
    container = build(Settings(ledger_data_dir=tmp_path, database_url=url))
    try:
        yield container
    finally:
        container.close()


def key_for(container: Container, role: Role, customer: str | None = None) -> str:
    key, record = new_key(role, customer, None, utc_now())
    container.backend.key_store().add(record)
    return key


def running_job(container: Container, customer: str) -> UUID:
    ledger = container.ledger
    job_id: UUID = ledger.execute(EnqueueJob(customer_id=customer), utc_now()).job_id
    ledger.execute(ClaimJob(job_id=job_id, worker_id="w1"), utc_now())
    return job_id


def ask(http: httpx.Client, key: str, jobs: list[tuple[UUID, int]]) -> httpx.Response:
    return http.post("/workers/cancels", headers={"authorization": f"Bearer {key}"}, json={
        "worker_id": "w1", "jobs": [{"job_id": str(j), "attempt": a} for j, a in jobs],
    })


def named(response: httpx.Response) -> set[tuple[UUID, int]]:
    assert response.status_code == 200, response.text
    return {(UUID(c["job_id"]), c["attempt"]) for c in response.json()["cancel_requested"]}


def test_the_route_names_cancelled_attempts_of_the_keys_customer(container: Container) -> None:
    acme, acme_running, beta = (running_job(container, c) for c in ("acme", "acme", "beta"))
    for job_id in (acme, beta):
        container.ledger.execute(CancelJob(job_id=job_id, actor="cli:ops"), utc_now())
    worker, acme_worker = key_for(container, Role.WORKER), key_for(container, Role.WORKER, "acme")
    service = key_for(container, Role.SERVICE, "acme")
    every = [(acme, 1), (acme_running, 1), (beta, 1), (uuid4(), 1)]
    with projections_running(container), serve_in_thread(build_http(container)) as api, \
            httpx.Client(base_url=api.base_url, timeout=10) as http:
        wait_for(lambda: named(ask(http, worker, every)) == {(acme, 1), (beta, 1)})
        head = recorded_head(container.ledger.recorder)
        assert named(ask(http, acme_worker, every)) == {(acme, 1)}  # beta's is not its to see
        assert named(ask(http, worker, [(acme, 2), (beta, 0 + 1)])) == {(beta, 1)}
        assert ask(http, service, every).status_code == 403
        too_many = ask(http, worker, [(uuid4(), 1)] * 1001)
        assert too_many.status_code in (400, 422), too_many.text
        assert ask(http, worker, []).status_code in (400, 422)
        assert recorded_head(container.ledger.recorder) == head  # asking appends nothing
        documented = http.get("/schema/openapi.json").json()["paths"]["/workers/cancels"]
        assert set(documented) == {"post"}
        assert "200" in documented["post"]["responses"]


def test_a_worker_over_http_stops_a_cancelled_handler_long_before_its_heartbeat(
    container: Container,
) -> None:
    started, stopped = threading.Event(), threading.Event()

    async def handler(ctx: JobContext) -> str:
        started.set()
        try:
            await anyio.sleep(60)
        finally:
            stopped.set()
        return "slept"

    key = key_for(container, Role.WORKER)
    with projections_running(container), serve_in_thread(build_http(container)) as api:
        job_id = container.ledger.execute(EnqueueJob(customer_id="acme"), utc_now()).job_id
        took = anyio.run(partial(
            _cancel_while_running, container, api.base_url, key, handler,
            job_id=job_id, started=started, stopped=stopped,
        ))
    assert took < 15, f"the worker learnt of the cancel after {took:.1f}s (heartbeat 30 s)"
    history = container.ledger.history(job_id)
    assert [e.by for e in history if isinstance(e, Job.Cancelled)] == ["worker"]
    assert not any(isinstance(e, Job.HeartbeatRecorded) for e in history)


async def _cancel_while_running(
    container: Container, url: str, key: str, handler: Any, *, job_id: UUID,
    started: threading.Event, stopped: threading.Event,
) -> float:
    transport = build_transport(container.settings, container.backend)
    port = HttpLedger(url, key, call_timeout=5)
    worker = Worker(handler, transport, port, WorkerConfig(
        heartbeat_interval=30, receive_wait=0.2, worker_id="poll-w1", grace=5,
    ))
    try:
        async with running(worker):
            await transport.send(JobMessage(job_id=job_id, attempt=0, customer_id="acme",
                                            dedup_key=f"{job_id}:1"))
            await _until(started.is_set, 10)
            cancelled_at = time.monotonic()
            container.ledger.execute(CancelJob(job_id=job_id, actor="cli:ops"), utc_now())
            await _until(lambda: container.ledger.get_job(job_id).status == Status.CANCELLED, 25)
            assert stopped.is_set()
            return time.monotonic() - cancelled_at
    finally:
        await port.aclose()
        await transport.aclose()


async def _until(predicate: Any, timeout: float) -> None:
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.05)
