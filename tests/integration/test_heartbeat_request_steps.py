"""Steps one heartbeat request takes on the event loop (issue 19, ADR 198), counted, not
timed: the tasks it spawns and the anyio cancel scopes it enters. The app runs in process
(Litestar's test client) on SQLite with a worker key; the counts are those made inside a
request (a context variable set by a wrapper around the app), so the limiter's and the
batch writer's own loops do not count."""

from __future__ import annotations

import asyncio
import contextvars
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from anyio._backends import _asyncio as anyio_asyncio
from litestar.middleware.compression.gzip_facade import GzipCompression
from litestar.testing import TestClient

from adapters.http.app import create_app
from adapters.http.problems import ApiError
from adapters.http.ratelimit import Limiter
from adapters.http.services import Writer
from adapters.http.wiring import build_http
from adapters.service.batching import BatchWriter
from adapters.service.bootstrap import build, utc_now
from adapters.service.settings import Settings
from ledger.access import Role, new_key
from ledger.commands import ClaimJob, EnqueueJob, Outcome, RecordHeartbeat
from ledger.status import Status

IN_REQUEST: contextvars.ContextVar[bool] = contextvars.ContextVar("in_request", default=False)


class Counted:
    """An ASGI app around the API that counts, inside requests, tasks created and cancel
    scopes entered."""

    def __init__(self, app: Any, counts: Counter[str]) -> None:
        self.app = app
        self.counts = counts

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            loop = asyncio.get_running_loop()
            loop.set_task_factory(self._factory)
            await self.app(scope, receive, send)
            return
        token = IN_REQUEST.set(True)
        try:
            await self.app(scope, receive, send)
        finally:
            IN_REQUEST.reset(token)

    def _factory(self, loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> Any:
        if IN_REQUEST.get():
            self.counts["tasks"] += 1
        return asyncio.Task(coro, loop=loop, **kwargs)


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, str, UUID,
                                                                            Counter[str]]]:
    counts: Counter[str] = Counter()
    entered = anyio_asyncio.CancelScope.__enter__

    def counting_enter(self: Any) -> Any:
        if IN_REQUEST.get():
            counts["cancel scopes"] += 1
        return entered(self)

    monkeypatch.setattr(anyio_asyncio.CancelScope, "__enter__", counting_enter)
    container = build(Settings(ledger_data_dir=tmp_path))
    secret, record = new_key(Role.WORKER, None, "steps", utc_now())
    container.backend.key_store().add(record)
    (enqueued,) = container.ledger.execute_batch([EnqueueJob(customer_id="acme")], utc_now())
    assert not isinstance(enqueued, Exception)
    container.ledger.execute_batch([ClaimJob(job_id=enqueued.job_id, worker_id="w")], utc_now())
    try:
        with TestClient(Counted(create_app(build_http(container)), counts)) as client:
            yield client, secret, enqueued.job_id, counts
    finally:
        container.close()


def test_a_heartbeat_request_spawns_no_task_and_enters_no_cancel_scope(
    served: tuple[Any, str, UUID, Counter[str]],
) -> None:
    """Before ADR 198: 2 tasks (Litestar resolved the route's two dependencies, writer and
    jobs, in a task group) and 2 cancel scopes (that task group's, and the writer's
    ``fail_after``) per request."""
    client, secret, job_id, counts = served
    headers = {"authorization": f"Bearer {secret}"}
    body = {"worker_id": "w", "attempt": 1}
    assert client.post(f"/jobs/{job_id}/heartbeat", json=body, headers=headers).status_code == 200
    counts.clear()
    for _ in range(20):
        answer = client.post(f"/jobs/{job_id}/heartbeat", json=body, headers=headers)
        assert answer.status_code == 200, answer.text
    assert counts == Counter()


def test_a_batch_of_heartbeats_spawns_no_task(
    served: tuple[Any, str, UUID, Counter[str]],
) -> None:
    client, secret, job_id, counts = served
    headers = {"authorization": f"Bearer {secret}"}
    body = {"worker_id": "w", "jobs": [{"job_id": str(job_id), "attempt": 1}]}
    assert client.post("/heartbeats", json=body, headers=headers).status_code == 200
    counts.clear()
    for _ in range(5):
        answer = client.post("/heartbeats", json=body, headers=headers)
        assert answer.json()["recorded"] == 1, answer.text
    assert counts["tasks"] == 0


class Stalled(BatchWriter):
    """A batch writer whose futures never resolve."""

    def submit(self, command: Any) -> Any:
        return Future()


def test_a_write_the_ledger_does_not_confirm_in_time_is_a_503(tmp_path: Path) -> None:
    """The writer's timeout (one timer of the loop, ADR 198) still answers 503
    ``write_timeout``, and the request's future is released."""
    container = build(Settings(ledger_data_dir=tmp_path))
    try:
        writer = Writer(Stalled(container.ledger, utc_now), Limiter(None), timeout=0.05)
        command = RecordHeartbeat(job_id=UUID(int=1), attempt=1, worker_id="w")

        async def run() -> ApiError:
            try:
                await writer.execute(command)
            except ApiError as error:
                return error
            raise AssertionError("no timeout")

        error = asyncio.run(run())
        assert (error.status, error.code) == (503, "write_timeout")
    finally:
        container.close()


def test_a_heartbeat_answer_skips_the_compression_middleware(
    served: tuple[Any, str, UUID, Counter[str]], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A client that accepts gzip (httpx does by default) had a gzip compressor made for
    each heartbeat's few hundred bytes, never used (minimum size 4 KiB): 0 now, 1 per
    request before. A large answer is still compressed."""
    client, secret, job_id, _ = served
    made = [0]
    original = GzipCompression.__init__

    def counted(self: Any, *args: Any, **kwargs: Any) -> None:
        made[0] += 1
        original(self, *args, **kwargs)

    monkeypatch.setattr(GzipCompression, "__init__", counted)
    headers = {"authorization": f"Bearer {secret}", "accept-encoding": "gzip"}
    for _ in range(5):
        answer = client.post(f"/jobs/{job_id}/heartbeat", json={"worker_id": "w", "attempt": 1},
                             headers=headers)
        assert answer.status_code == 200
        assert "content-encoding" not in answer.headers
    assert made[0] == 0
    schema = client.get("/schema/openapi.json", headers=headers)
    assert schema.headers["content-encoding"] == "gzip"


class Held(BatchWriter):
    """A batch writer whose futures are resolved together when :meth:`release` is
    called (by the caller's thread: the loop cannot run in between, so the count does
    not depend on thread switches)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.futures: list[Future[Any]] = []

    def submit(self, command: Any) -> Any:
        future: Future[Any] = Future()
        self.futures.append(future)
        return future

    def release(self, result: Any) -> None:
        for future in self.futures:
            future.set_result(result)


def test_requests_settled_by_one_batch_wake_the_loop_once(tmp_path: Path) -> None:
    """50 requests whose writes one batch settles: the event loop is called once for all
    of them (50 times before: once per request)."""
    container = build(Settings(ledger_data_dir=tmp_path))
    try:
        held = Held(container.ledger, utc_now)
        writer = Writer(held, Limiter(None))
        outcome = Outcome(job_id=UUID(int=1), status=Status.IN_PROGRESS, attempt=1, version=2)
        command = RecordHeartbeat(job_id=UUID(int=1), attempt=1, worker_id="w")

        async def run() -> tuple[list[Outcome], int]:
            loop = asyncio.get_running_loop()
            calls = [0]
            original = loop.call_soon_threadsafe

            def counted(*args: Any, **kwargs: Any) -> Any:
                calls[0] += 1
                return original(*args, **kwargs)

            loop.call_soon_threadsafe = counted  # type: ignore[method-assign,assignment]
            tasks = [asyncio.create_task(writer.execute(command)) for _ in range(50)]
            while len(held.futures) < 50:
                await asyncio.sleep(0)
            held.release(outcome)
            return list(await asyncio.gather(*tasks)), calls[0]

        outcomes, wakeups = asyncio.run(run())
        assert outcomes == [outcome] * 50
        assert wakeups == 1
    finally:
        container.close()
