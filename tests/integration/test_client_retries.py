"""The HTTP client's retries against a tiny real HTTP server that fails N times: GETs and
enqueues with an idempotency key are retried on 503 and on a refused connection, a
keyless enqueue never; the answers' problem codes become the ledger's own errors."""

from __future__ import annotations

import threading
import time
from uuid import uuid4

import msgspec
import pytest

from job_ledger import AsyncClient, Backoff, Client, JobRequest, RateLimited, Unavailable
from ledger.errors import AttemptSuperseded, JobNotFound, QueuePaused
from tests.support.flaky_http import Flaky, flaky_server, free_port

FAST = Backoff(tries=4, base=0.01, cap=0.05)
JOB_ID = uuid4()
ENQUEUED = msgspec.json.encode({"job_id": str(JOB_ID), "status": "pending", "created": True})
STATE = msgspec.json.encode({
    "job_id": str(JOB_ID), "customer_id": "acme", "queue": "default", "status": "pending",
    "attempt": 0, "attempts_used": 0, "max_attempts": 3,
    "enqueued_at": "2026-12-01T00:00:00Z", "cancel_requested": 0,
})


def test_an_enqueue_with_an_idempotency_key_is_retried_on_503() -> None:
    flaky = Flaky(failures=2, body=ENQUEUED, status=201)
    with flaky_server(flaky) as url, Client(url, customer_id="acme", backoff=FAST) as client:
        enqueued = client.enqueue({"n": 1}, idempotency_key="k-1")
    assert enqueued.job_id == JOB_ID
    assert flaky.requests == ["POST /jobs"] * 3


def test_a_keyless_enqueue_is_sent_once_even_on_503() -> None:
    flaky = Flaky(failures=1, body=ENQUEUED, status=201)
    with flaky_server(flaky) as url, Client(url, customer_id="acme", backoff=FAST) as client, \
            pytest.raises(Unavailable) as raised:
        client.enqueue({"n": 1})
    assert flaky.requests == ["POST /jobs"]
    assert raised.value.http_status == 503
    assert raised.value.problem_code == "database_unavailable"


def test_a_batch_is_retried_only_when_every_job_has_a_key() -> None:
    batch = msgspec.json.encode({"jobs": [{"index": 0, "job_id": str(JOB_ID),
                                           "status": "pending", "created": True}]})
    flaky = Flaky(failures=1, body=batch, status=201)
    with flaky_server(flaky) as url, Client(url, customer_id="acme", backoff=FAST) as client:
        assert client.enqueue_many([JobRequest(idempotency_key="a")])[0].job_id == JOB_ID
        assert len(flaky.requests) == 2
        flaky.requests.clear()
        flaky.failures = 1
        with pytest.raises(Unavailable):
            client.enqueue_many([JobRequest(idempotency_key="a"), JobRequest()])
        assert len(flaky.requests) == 1


def test_a_get_gives_up_after_its_tries() -> None:
    flaky = Flaky(failures=100, body=STATE)
    with flaky_server(flaky) as url, Client(url, backoff=FAST) as client, \
            pytest.raises(Unavailable):
        client.get(JOB_ID)
    assert len(flaky.requests) == FAST.tries


def test_a_get_is_retried_on_a_refused_connection_until_the_server_answers() -> None:
    port = free_port()
    flaky = Flaky(failures=0, body=STATE)
    started = threading.Event()
    stop = threading.Event()

    def serve_later() -> None:
        time.sleep(0.3)
        with flaky_server(flaky, port):
            started.set()
            stop.wait(10)

    thread = threading.Thread(target=serve_later, daemon=True)
    thread.start()
    patient = Backoff(tries=8, base=0.1, cap=0.3)
    try:
        with Client(f"http://127.0.0.1:{port}", backoff=patient) as client:
            state = client.get(JOB_ID)
    finally:
        stop.set()
        thread.join(10)
    assert started.is_set()
    assert state.status == "pending"
    assert flaky.requests == [f"GET /jobs/{JOB_ID}"]


def test_a_keyless_enqueue_is_not_retried_on_a_refused_connection() -> None:
    port = free_port()
    began = time.monotonic()
    with Client(f"http://127.0.0.1:{port}", customer_id="acme",
                backoff=Backoff(tries=5, base=1.0, cap=1.0)) as client, \
            pytest.raises(Unavailable, match="ConnectError"):
        client.enqueue()
    assert time.monotonic() - began < 1.0  # no backoff sleep: one try


def test_a_503_waits_for_its_retry_after_up_to_the_cap() -> None:
    flaky = Flaky(failures=1, body=STATE, headers={"Retry-After": "0.3"})
    with flaky_server(flaky) as url, \
            Client(url, backoff=Backoff(tries=2, base=0.01, cap=0.5)) as client:
        began = time.monotonic()
        client.get(JOB_ID)
        assert time.monotonic() - began >= 0.3


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        (409, "attempt_superseded", AttemptSuperseded),
        (404, "job_not_found", JobNotFound),
        (429, "queue_paused", QueuePaused),
        (429, "rate_limited", RateLimited),
        (429, None, RateLimited),
    ],
)
def test_problem_codes_are_the_ledgers_errors(
    status: int, code: str | None, error: type[Exception]
) -> None:
    problem = msgspec.json.encode({"status": status, "detail": "refused", "code": code})
    flaky = Flaky(failures=1, body=STATE, fail_status=status, fail_body=problem,
                  headers={"Retry-After": "7"})
    with flaky_server(flaky) as url, Client(url, backoff=FAST) as client, \
            pytest.raises(error) as raised:
        client.get(JOB_ID)
    assert raised.value.retry_after == 7.0  # type: ignore[attr-defined]
    assert raised.value.http_status == status  # type: ignore[attr-defined]
    assert len(flaky.requests) == 1  # a 4xx is never retried


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_async_client_retries_the_same_way(anyio_backend: str) -> None:
    flaky = Flaky(failures=2, body=ENQUEUED, status=201)
    with flaky_server(flaky) as url:
        async with AsyncClient(url, customer_id="acme", backoff=FAST) as client:
            assert (await client.enqueue(idempotency_key="k")).job_id == JOB_ID
            flaky.requests.clear()
            flaky.failures = 1
            with pytest.raises(Unavailable):
                await client.enqueue()
    assert flaky.requests == ["POST /jobs"]
