"""``/health`` and ``/metrics`` show what the queue controls do (issue 14, ADR 100): an
operator pauses a queue and caps another over HTTP, jobs of the capped queue run, and the
health body names the paused queue (by whom, why) and each controlled queue's running
jobs against its cap; ``/metrics`` has ``jobledger_queue_paused`` and
``jobledger_queue_running`` with the bounded labels (configured queues, the rest summed
as ``other``). On SQLite and PostgreSQL, with the projection runner feeding the views."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import httpx
import pytest

from adapters.http.wiring import HttpSettings, build_http
from adapters.service.bootstrap import build
from adapters.service.settings import Settings
from tests.support.http import projections_running, serve_in_thread, wait_for
from tests.support.pg import PostgresServer


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def client(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[httpx.Client]:
    database_url = None
    if request.param == "postgres":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        name = f"job_ledger_hq_{uuid4().hex[:12]}"
        database_url = server.create_database(name)
    settings = Settings(ledger_data_dir=tmp_path_factory.mktemp("hq"), database_url=database_url)
    container = build(settings)
    parts = build_http(
        container, http=HttpSettings(metrics_queues=frozenset({"default", "reports"}))
    )
    parts.access.open_allowed = True
    try:
        with projections_running(container), serve_in_thread(parts) as running, \
                httpx.Client(base_url=running.base_url, timeout=10) as http:
            yield http
    finally:
        container.close()
        if database_url is not None:
            server.drop_database(name)


def post(client: httpx.Client, path: str, **body: Any) -> dict[str, Any]:
    response = client.post(path, json=body)
    assert response.status_code in (200, 201), response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_health_and_metrics_show_paused_queues_and_running_against_the_cap(
    client: httpx.Client,
) -> None:
    assert client.get("/health").json()["queues"] == {"paused": [], "controlled": {}}
    post(client, "/queues/emails/pause", reason="provider outage")
    post(client, "/queues/reports/limit", max_running=2, reason="db load")
    for _ in range(3):
        job = post(client, "/jobs", customer_id="acme", queue="reports")
    claimed = [post(client, f"/jobs/{j}/claim", worker_id="w1") for j in (job["job_id"],)]
    assert claimed[0]["attempt"] == 1

    def queues() -> dict[str, Any]:
        body: dict[str, Any] = client.get("/health").json()["queues"]
        return body

    wait_for(lambda: queues()["controlled"].get("reports", {}).get("running") == 1)
    health = client.get("/health").json()
    assert health["status"] == "healthy"  # a pause is a decision, not trouble
    assert health["queues"]["paused"] == ["emails"]
    emails = health["queues"]["controlled"]["emails"]
    assert (emails["paused"], emails["paused_reason"], emails["running"]) == (
        True, "provider outage", 0)
    assert emails["paused_by"] == "api:open"
    assert emails["paused_at"]
    reports = health["queues"]["controlled"]["reports"]
    assert (reports["paused"], reports["running"], reports["max_running"]) == (False, 1, 2)

    text = client.get("/metrics").text
    assert 'jobledger_queue_paused{queue="other"} 1.0' in text
    assert 'jobledger_queue_paused{queue="reports"} 0.0' in text
    assert 'jobledger_queue_running{queue="reports"} 1.0' in text
    assert 'queue="emails"' not in text  # not configured: summed as other

    post(client, "/queues/emails/resume")
    wait_for(lambda: queues()["paused"] == [])
    assert 'jobledger_queue_paused{queue="other"} 0.0' in client.get("/metrics").text
