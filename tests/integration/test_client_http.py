"""The HTTP client against the real API (uvicorn on 127.0.0.1, API keys) on SQLite and
PostgreSQL: each method, and the API's refusals as the ledger's own errors."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from adapters.http.wiring import HttpSettings, build_http
from adapters.service.bootstrap import Container, build, utc_now
from adapters.service.settings import Settings
from job_ledger import AccessDenied, Client, JobRequest, RateLimited, WaitTimedOut
from ledger.access import Role, new_key
from ledger.commands import ClaimJob, CompleteJob
from ledger.errors import (
    IdempotencyConflict,
    IllegalTransition,
    InvalidCommand,
    InvalidText,
    JobNotFound,
)
from tests.support.http import serve_in_thread


@dataclass
class Served:
    container: Container
    url: str
    acme_key: str
    service_key: str

    def client(self, key: str | None = None, **options: Any) -> Client:
        return Client(self.url, key or self.acme_key, customer_id="acme", **options)


def _serve(tmp: Path, database_url: str | None, http: HttpSettings | None = None) -> Iterator[
    Served
]:
    container = build(Settings(ledger_data_dir=tmp, database_url=database_url))
    keys = container.backend.key_store()
    acme_key, record = new_key(Role.SERVICE, "acme", None, utc_now())
    keys.add(record)
    service_key, record = new_key(Role.SERVICE, None, None, utc_now())
    keys.add(record)
    try:
        with serve_in_thread(build_http(container, http=http)) as running:
            yield Served(container, running.base_url, acme_key, service_key)
    finally:
        container.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    yield from _serve(tmp_path, url)


def test_enqueue_get_history_and_an_idempotent_replay(served: Served) -> None:
    with served.client() as client:
        first = client.enqueue({"invoice": 42}, queue="emails", priority=5, max_attempts=2,
                               idempotency_key="invoice-42")
        again = client.enqueue({"invoice": 42}, queue="emails", priority=5, max_attempts=2,
                               idempotency_key="invoice-42")
        state = client.get(first.job_id)
        history = client.history(str(first.job_id))
        with pytest.raises(IdempotencyConflict):
            client.enqueue({"invoice": 43}, queue="emails", idempotency_key="invoice-42")
    assert (first.created, again.created, again.job_id) == (True, False, first.job_id)
    assert (state.status, state.queue, state.priority, state.max_attempts) == (
        "pending", "emails", 5, 2)
    assert [event.type for event in history] == ["Enqueued"]
    assert history[0].data["payload"] == {"invoice": 42}


def test_delay_and_run_at_make_a_job_scheduled(served: Served) -> None:
    with served.client() as client:
        delayed = client.enqueue(delay=300)
        at = client.enqueue(run_at=utc_now().replace(year=utc_now().year + 1))
        state = client.get(delayed.job_id)
    assert (delayed.status, at.status) == ("scheduled", "scheduled")
    assert state.not_before is not None


def test_enqueue_many_in_one_request(served: Served) -> None:
    jobs = [JobRequest(payload={"n": n}, idempotency_key=f"n-{n}") for n in range(50)]
    with served.client() as client:
        enqueued = client.enqueue_many(jobs)
        replayed = client.enqueue_many(jobs[:10])
    assert len({job.job_id for job in enqueued}) == 50
    assert all(job.created for job in enqueued)
    assert [job.job_id for job in replayed] == [job.job_id for job in enqueued[:10]]
    assert not any(job.created for job in replayed)


def test_a_bad_item_refuses_the_whole_batch_naming_its_index(served: Served) -> None:
    jobs = [JobRequest(idempotency_key="ok-0"), JobRequest(idempotency_key="ok-1"),
            JobRequest(priority=500)]
    with served.client() as client:
        with pytest.raises(InvalidCommand) as raised:
            client.enqueue_many(jobs)
        assert raised.value.item_index == 2  # type: ignore[attr-defined]
        assert raised.value.http_status == 422  # type: ignore[attr-defined]
        with pytest.raises(InvalidText) as text:
            client.enqueue_many([JobRequest(), JobRequest(payload={"a": "\x00"})])
        assert text.value.item_index == 1  # type: ignore[attr-defined]
        with pytest.raises(InvalidCommand) as both:
            client.enqueue_many([JobRequest(delay=1, run_at=utc_now())])
        assert both.value.item_index == 0  # type: ignore[attr-defined]
        with pytest.raises(AccessDenied) as other:
            client.enqueue_many([JobRequest(), JobRequest(customer_id="globex")])
        assert (other.value.http_status, other.value.item_index) == (403, 1)
        for key in ("ok-0", "ok-1"):  # nothing of a refused batch was enqueued
            with pytest.raises(JobNotFound):
                client.get(_keyed_id("acme", key))


def test_an_idempotency_conflict_in_a_batch_names_its_item(served: Served) -> None:
    with served.client() as client:
        client.enqueue({"v": 1}, idempotency_key="same")
        with pytest.raises(IdempotencyConflict) as raised:
            client.enqueue_many([JobRequest(idempotency_key="fresh"),
                                 JobRequest(payload={"v": 2}, idempotency_key="same")])
        assert raised.value.item_index == 1  # type: ignore[attr-defined]
        assert client.get(_keyed_id("acme", "fresh")).status == "pending"


def test_bad_input_is_invalid_command_with_its_status(served: Served) -> None:
    with served.client() as client:
        with pytest.raises(InvalidCommand) as raised:
            client.enqueue(priority=1000)
        assert raised.value.http_status == 422  # type: ignore[attr-defined]
        with pytest.raises(InvalidText):
            client.enqueue({"text": "bad \ufffe"})
        with pytest.raises(InvalidCommand):
            client.enqueue(queue="no spaces allowed")


def test_another_customers_job_is_not_found_with_a_scoped_key(served: Served) -> None:
    with served.client(served.service_key) as service, served.client() as acme:
        theirs = service.enqueue({"secret": 1}, customer_id="globex")
        for read in (acme.get, acme.history, acme.cancel):
            with pytest.raises(JobNotFound) as raised:
                read(theirs.job_id)
            assert raised.value.http_status == 404  # type: ignore[attr-defined]
        with pytest.raises(AccessDenied) as denied:
            acme.enqueue(customer_id="globex")
        assert denied.value.http_status == 403
        assert service.get(theirs.job_id).status == "pending"  # untouched
    with Client(served.url, "jl_nope_nope", customer_id="acme") as stranger, \
            pytest.raises(AccessDenied) as unknown:
        stranger.enqueue()
    assert unknown.value.http_status == 401


def test_cancel_then_cancel_again_is_a_409(served: Served) -> None:
    with served.client() as client:
        job = client.enqueue()
        cancelled = client.cancel(job.job_id, reason="customer asked")
        with pytest.raises(IllegalTransition) as raised:
            client.cancel(job.job_id)
    assert cancelled.status == "cancelled"
    assert raised.value.http_status == 409  # type: ignore[attr-defined]


def test_wait_returns_the_terminal_job_or_times_out(served: Served) -> None:
    with served.client() as client:
        job = client.enqueue({"n": 1})
        with pytest.raises(WaitTimedOut) as raised:
            client.wait(job.job_id, timeout=0.3)
        assert raised.value.status == "pending"
        ledger = served.container.ledger
        claimed = ledger.execute(ClaimJob(job_id=job.job_id, worker_id="w"), utc_now())
        ledger.execute(CompleteJob(job_id=job.job_id, attempt=claimed.attempt, worker_id="w",
                                   result={"ok": True}), utc_now())
        done = client.wait(job.job_id, timeout=10)
    assert done.status == "completed"
    assert done.terminal


def test_a_429_raises_rate_limited_with_retry_after(tmp_path: Path) -> None:
    for served in _serve(tmp_path, None, HttpSettings(service_per_minute=3)):
        with served.client() as client:
            job = client.enqueue()
            with pytest.raises(RateLimited) as raised:  # noqa: PT012
                for _ in range(10):
                    client.get(job.job_id)
        assert raised.value.http_status == 429
        assert raised.value.retry_after is not None
        assert raised.value.retry_after > 0


def _keyed_id(customer: str, key: str) -> Any:
    from ledger.job_ids import idempotent_job_id

    return idempotent_job_id(customer, key)
