"""Issue 13 over real HTTP, on SQLite and PostgreSQL: a text the log cannot hold is a 422
naming the field (nothing appended, every view keeps up); a worker's normalised error is
accepted and marked in the event."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import anyio
import httpx
import pytest

from adapters.http.wiring import build_http
from adapters.service.bootstrap import build
from adapters.service.settings import Settings
from adapters.worker import HttpLedger
from projections.registry import VIEWS
from tests.support.http import (
    RunningApi,
    projections_running,
    serve_in_thread,
    settled_head,
    wait_for,
)
from tests.support.pg import PostgresServer


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def running(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningApi]:
    database_url = None
    if request.param == "postgres":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        name = f"job_ledger_text_{uuid4().hex[:12]}"
        database_url = server.create_database(name)
    settings = Settings(
        ledger_data_dir=tmp_path_factory.mktemp("text"), database_url=database_url,
        retry_base_delay_seconds=0, retry_max_delay_seconds=0,
    )
    container = build(settings)
    parts = build_http(container)
    parts.access.open_allowed = True
    try:
        with projections_running(container), serve_in_thread(parts) as running:
            yield running
    finally:
        container.close()
        if database_url is not None:
            server.drop_database(name)


@pytest.fixture
def client(running: RunningApi) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=running.base_url, timeout=10) as http:
        yield http


def head(running: RunningApi) -> int:
    return settled_head(running)


def views_at_head(running: RunningApi) -> bool:
    """Every view at the head, none in error, and nothing committed held back past the
    head (on PostgreSQL the settled head lags a commit while an older transaction runs:
    without that, a view "at the head" may not have the last write yet)."""

    def check(store: Any) -> bool:
        at = store.head()
        if getattr(store, "held_back", lambda: 0)():
            return False
        tracked = {t.view: t for t in store.all_tracking()}
        return all(
            tracked.get(v) is not None and tracked[v].position == at and not tracked[v].error
            for v in VIEWS
        )

    return bool(running.parts.views.use(check))


def claimed(client: httpx.Client) -> str:
    response = client.post("/jobs", json={"customer_id": "acme", "max_attempts": 2})
    assert response.status_code == 201, response.text
    job_id: str = response.json()["job_id"]
    response = client.post(f"/jobs/{job_id}/claim", json={"worker_id": "w1"})
    assert response.status_code == 200, response.text
    return job_id


def post_raw(client: httpx.Client, path: str, raw: bytes) -> httpx.Response:
    return client.post(path, content=raw, headers={"content-type": "application/json"})


def test_a_failure_text_with_nul_is_422_naming_the_field_and_views_keep_going(
    running: RunningApi, client: httpx.Client
) -> None:
    job_id = claimed(client)
    before = head(running)
    body = b'{"worker_id": "w1", "attempt": 1, "error": "boom\\u0000x"}'
    response = post_raw(client, f"/jobs/{job_id}/fail", body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == "invalid_text"
    assert problem["detail"].startswith("error: U+0000 at character 4")
    assert head(running) == before  # nothing appended
    response = client.post(f"/jobs/{job_id}/fail", json={
        "worker_id": "w1", "attempt": 1, "error": "boom \U0001f4a5\ttab\r\nline",
    })
    assert response.status_code == 200, response.text
    wait_for(lambda: views_at_head(running))
    shown = client.get(f"/jobs/{job_id}").json()
    assert shown["last_error"] == "boom \U0001f4a5\ttab\r\nline"


@pytest.mark.parametrize(("raw", "field"), [
    (b'{"customer_id": "acme", "payload": {"a\\u0000": 1}}', "payload"),
    (b'{"customer_id": "acme", "payload": {"a": [1, "\\u0001"]}}', "payload.a[1]"),
    (b'{"customer_id": "acme", "payload": "\\uffff"}', "payload"),
    (b'{"customer_id": "acme\\ufffe"}', "customer_id"),
    (b'{"customer_id": "acme", "idempotency_key": "\\uffff"}', "idempotency_key"),
])
def test_an_enqueue_with_unstorable_text_is_422_naming_the_field(
    running: RunningApi, client: httpx.Client, raw: bytes, field: str
) -> None:
    before = head(running)
    response = post_raw(client, "/jobs", raw)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "invalid_text"
    assert response.json()["detail"].startswith(f"{field}: ")
    assert head(running) == before


def test_a_lone_surrogate_in_json_is_a_4xx(running: RunningApi, client: httpx.Client) -> None:
    job_id = claimed(client)
    for path, raw in (
        ("/jobs", b'{"customer_id": "acme", "payload": "\\ud800"}'),
        (f"/jobs/{job_id}/fail", b'{"worker_id": "w1", "attempt": 1, "error": "\\udc00x"}'),
    ):
        response = post_raw(client, path, raw)
        assert 400 <= response.status_code < 500, response.text


def test_a_worker_over_http_reports_a_normalised_error_and_the_event_says_so(
    running: RunningApi, client: httpx.Client
) -> None:
    job_id = claimed(client)

    async def report() -> str:
        ledger = HttpLedger(running.base_url, None)
        try:
            return await ledger.fail(UUID(job_id), 1, "w1", "x\ufffd", normalised=True)
        finally:
            await ledger.aclose()

    assert anyio.run(report) == "pending"
    events = client.get(f"/jobs/{job_id}/history").json()["events"]
    (failed,) = [e for e in events if e["type"] == "Failed"]
    assert failed["data"]["error"] == "x\ufffd"
    assert failed["data"]["error_normalised"] is True
    wait_for(lambda: views_at_head(running))
