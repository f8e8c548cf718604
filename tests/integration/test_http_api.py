"""The HTTP API through a real uvicorn server on 127.0.0.1, on the embedded default (open:
loopback, no keys), with the projection runner feeding the views."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest

from adapters.http.wiring import build_http
from adapters.service.bootstrap import build
from adapters.service.settings import Settings
from projections.queries.rate_limits import RateLimitQueries
from projections.registry import VIEWS
from projections.runner import catch_up_unfed
from tests.support.http import (
    RunningApi,
    projections_running,
    serve_in_thread,
    settled_head,
    wait_for,
)
from tests.support.pg import PostgresServer

CUSTOMER = "acme"


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def running(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningApi]:
    """The API on the embedded default, and on PostgreSQL (open there too: the test builds
    the API for a loopback host and a PostgreSQL database has no keys, so it is told to be
    open explicitly)."""
    database_url = None
    if request.param == "postgres":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        name = f"job_ledger_http_{uuid4().hex[:12]}"
        database_url = server.create_database(name)
    settings = Settings(
        ledger_data_dir=tmp_path_factory.mktemp("api"),
        database_url=database_url,
        retry_base_delay_seconds=0,
        retry_max_delay_seconds=0,
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


def log_head(running: RunningApi) -> int:
    return settled_head(running)


def appended_since(running: RunningApi, head: int) -> list[str]:
    """The topics of the events appended after ``head``, but the limiter's tallies: the
    API appends a ``RequestTally`` for each minute its limiter finished counting, every
    15 s (the count of the requests, the bad ones too, not something they did)."""
    log_head(running)
    rows = running.parts.views.use(lambda store: store.read_events(head, 100))
    return [row[3] for row in rows if not row[3].startswith("ledger.tally:")]


def enqueue(client: httpx.Client, **body: Any) -> str:
    response = client.post("/jobs", json={"customer_id": CUSTOMER, **body})
    assert response.status_code == 201, response.text
    job_id: str = response.json()["job_id"]
    return job_id


def claimed(client: httpx.Client, worker: str = "w1", **body: Any) -> str:
    job_id = enqueue(client, **body)
    response = client.post(f"/jobs/{job_id}/claim", json={"worker_id": worker})
    assert response.status_code == 200, response.text
    return job_id


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["detail"]
    return body


def test_enqueue_answers_201_and_the_idempotency_key_returns_the_same_job(
    client: httpx.Client,
) -> None:
    response = client.post("/jobs", json={"customer_id": CUSTOMER, "payload": {"n": 1}})
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "pending"
    assert response.headers["location"] == f"/jobs/{body['job_id']}"

    request = {"customer_id": CUSTOMER, "payload": [1, 2], "idempotency_key": "order-7"}
    first = client.post("/jobs", json=request)
    again = client.post("/jobs", json=request)
    assert (first.status_code, again.status_code) == (201, 201)
    assert first.json()["job_id"] == again.json()["job_id"]
    assert (first.json()["created"], again.json()["created"]) == (True, False)
    assert again.headers["idempotent-replayed"] == "true"
    conflict = client.post("/jobs", json={**request, "payload": "other"})
    assert_problem(conflict, 422)


def test_a_job_through_claim_heartbeat_fail_retry_and_completion(client: httpx.Client) -> None:
    job_id = enqueue(client, payload={"report": 1})
    claim = client.post(f"/jobs/{job_id}/claim", json={"worker_id": "w1"})
    assert claim.json() == {
        "job_id": job_id, "attempt": 1, "status": "in_progress", "payload": {"report": 1},
        "traceparent": None,  # enqueued without one (ADR 125)
    }
    assert_problem(client.post(f"/jobs/{job_id}/claim", json={"worker_id": "w2"}), 409)

    beat = client.post(f"/jobs/{job_id}/heartbeat", json={"worker_id": "w1", "attempt": 1})
    assert beat.json() == {
        "job_id": job_id, "attempt": 1, "status": "in_progress", "cancel_requested": False
    }
    failed = client.post(
        f"/jobs/{job_id}/fail", json={"worker_id": "w1", "attempt": 1, "error": "boom"}
    )
    assert failed.json()["status"] == "pending"  # retried

    assert client.post(f"/jobs/{job_id}/claim", json={"worker_id": "w2"}).json()["attempt"] == 2
    late = client.post(f"/jobs/{job_id}/heartbeat", json={"worker_id": "w1", "attempt": 1})
    assert assert_problem(late, 409)["code"] == "attempt_superseded"
    done = client.post(
        f"/jobs/{job_id}/complete", json={"worker_id": "w2", "attempt": 2, "result": {"ok": 1}}
    )
    assert done.json() == {
        "job_id": job_id, "attempt": 2, "status": "completed", "cancel_requested": False
    }

    history = client.get(f"/jobs/{job_id}/history").json()
    assert history["job_id"] == job_id
    types = [e["type"] for e in history["events"]]
    assert types == [
        "Enqueued", "Claimed", "HeartbeatRecorded", "Failed", "Requeued", "Claimed",
        "ReportRefused", "Completed",
    ]
    assert [e["version"] for e in history["events"]] == list(range(1, len(types) + 1))
    assert history["events"][0]["data"]["payload"] == {"report": 1}
    assert all(set(e) == {"type", "version", "recorded_at", "data"} for e in history["events"])

    wait_for(lambda: client.get(f"/jobs/{job_id}").json()["status"] == "completed")
    view = client.get(f"/jobs/{job_id}").json()
    assert (view["attempt"], view["refused_reports"], view["customer_id"]) == (2, 1, CUSTOMER)


def test_unknown_jobs_are_404(client: httpx.Client) -> None:
    unknown = "6f0c7c36-55a4-4c1e-9f3b-1c7f0a2b9d11"
    assert_problem(client.get(f"/jobs/{unknown}"), 404)
    assert_problem(client.get(f"/jobs/{unknown}/history"), 404)
    assert_problem(client.post(f"/jobs/{unknown}/claim", json={"worker_id": "w"}), 404)


def test_batch_heartbeats_answer_each_job(client: httpx.Client) -> None:
    first, second = claimed(client), claimed(client)
    client.post(f"/jobs/{second}/fail", json={"worker_id": "w1", "attempt": 1, "error": "x"})
    unknown = "6f0c7c36-55a4-4c1e-9f3b-1c7f0a2b9d11"
    response = client.post("/heartbeats", json={"worker_id": "w1", "jobs": [
        {"job_id": first, "attempt": 1},
        {"job_id": second, "attempt": 1},
        {"job_id": unknown, "attempt": 1},
        {"job_id": first, "attempt": 5},
    ]})
    assert response.status_code == 200
    body = response.json()
    assert [(r["result"], r["status"]) for r in body["results"]] == [
        ("recorded", 200), ("superseded", 409), ("not_found", 404), ("rejected", 409),
    ]
    assert (body["recorded"], body["refused"]) == (1, 3)


BAD_REQUESTS: list[tuple[str, str, bytes, dict[str, str]]] = [
    ("POST", "/jobs", b'{"customer_id": "acme", "surprise": 1}', {}),
    ("POST", "/jobs", b'{"customer_id": 7}', {}),
    ("POST", "/jobs", b'{"customer_id": "acme", "max_attempts": "3"}', {}),
    ("POST", "/jobs", b'{"customer_id": "acme", "max_attempts": 0}', {}),
    ("POST", "/jobs", b'{"customer_id": "acme", "max_attempts": 101}', {}),
    ("POST", "/jobs", b'{"customer_id": ""}', {}),
    ("POST", "/jobs", b'{"customer_id": "' + b"x" * 201 + b'"}', {}),
    ("POST", "/jobs", b'{"customer_id": "acme", "queue": "no spaces"}', {}),
    ("POST", "/jobs", b'{"customer_id": "a\\u0000b"}', {}),
    ("POST", "/jobs", b'{"customer_id": "acme"', {}),
    ("POST", "/jobs", b"", {}),
    ("POST", "/jobs", b"[]", {}),
    ("POST", "/jobs", b"null", {}),
    ("POST", "/jobs", b'{"customer_id": "acme"}', {"content-type": "text/plain"}),
    ("POST", "/jobs", b'{"customer_id": "acme", "payload": "' + b"x" * 1_100_000 + b'"}', {}),
    ("POST", "/jobs/not-a-uuid/claim", b'{"worker_id": "w"}', {}),
    ("POST", "/jobs/{job}/claim", b'{"worker_id": "w", "extra": true}', {}),
    ("POST", "/jobs/{job}/claim", b'{}', {}),
    ("POST", "/jobs/{job}/heartbeat", b'{"worker_id": "w", "attempt": 0}', {}),
    ("POST", "/jobs/{job}/heartbeat", b'{"worker_id": "w", "attempt": 1.5}', {}),
    ("POST", "/jobs/{job}/complete", b'{"worker_id": "w"}', {}),
    ("POST", "/jobs/{job}/fail", b'{"worker_id": "w", "attempt": 1, "error": null}', {}),
    ("POST", "/heartbeats", b'{"worker_id": "w", "jobs": []}', {}),
    ("POST", "/heartbeats", b'{"worker_id": "w", "jobs": [{"job_id": "nope", "attempt": 1}]}', {}),
    ("POST", "/dlq/redrive", b'{"all": true, "job_ids": []}', {}),
    ("POST", "/dlq/redrive", b"{}", {}),
    ("GET", "/queue/acme?limit=0", b"", {}),
    ("GET", "/queue/acme?status=lost", b"", {}),
    ("DELETE", "/jobs", b"", {}),
]


@pytest.mark.parametrize("case", BAD_REQUESTS)
def test_bad_requests_get_4xx_problems_and_append_nothing(
    running: RunningApi, client: httpx.Client, case: tuple[str, str, bytes, dict[str, str]]
) -> None:
    method, path, body, headers = case
    job_id = claimed(client)
    head = log_head(running)
    response = client.request(
        method, path.replace("{job}", job_id), content=body,
        headers={"content-type": "application/json", **headers},
    )
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["detail"]
    assert appended_since(running, head) == []


def test_refused_transitions_append_nothing(running: RunningApi, client: httpx.Client) -> None:
    job_id = claimed(client)
    head = log_head(running)
    assert_problem(client.post(f"/jobs/{job_id}/claim", json={"worker_id": "w2"}), 409)
    unknown = client.post(
        "/jobs/6f0c7c36-55a4-4c1e-9f3b-1c7f0a2b9d11/heartbeat",
        json={"worker_id": "w", "attempt": 1},
    )
    assert_problem(unknown, 404)
    never = client.post(f"/jobs/{job_id}/heartbeat", json={"worker_id": "w1", "attempt": 9})
    assert_problem(never, 409)
    assert appended_since(running, head) == []


def test_health_has_the_deployments_body(client: httpx.Client) -> None:
    enqueue(client)
    wait_for(lambda: client.get("/health").json()["metrics"]["jobs_pending"] > 0)
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["timestamp"])
    assert isinstance(body["uptime"], float)
    database = body["services"]["database"]
    assert database["status"] == "up"
    assert isinstance(database["latency"], int)
    workers = body["services"]["workers"]
    assert set(workers) == {"status", "active_count", "stale_count"}
    assert workers["status"] == "up"
    assert workers["active_count"] >= 1
    assert set(body["metrics"]) == {
        "jobs_pending", "jobs_in_progress", "jobs_completed_today", "jobs_failed_today"
    }
    assert body["services"]["rate_limiter"]["status"] == "up"
    assert body["services"]["alerts"] == {"status": "up", "pending": 0, "failed": 0}
    assert set(body["services"]["projections"]) == set(VIEWS)

    typed = client.get("/health", headers={"accept": "application/health+json"})
    assert typed.headers["content-type"].startswith("application/health+json")
    assert typed.json()["status"] == "pass"
    assert "database:responseTime" in typed.json()["checks"]
    assert client.get("/health/live").json() == {"status": "alive"}
    assert client.get("/health/ready").json()["status"] == "ready"


def test_metrics_are_prometheus_text(client: httpx.Client) -> None:
    job_id = claimed(client)
    client.post(f"/jobs/{job_id}/heartbeat", json={"worker_id": "w1", "attempt": 1})
    retried = claimed(client)
    client.post(f"/jobs/{retried}/fail", json={"worker_id": "w1", "attempt": 1, "error": "x"})
    wait_for(lambda: 'status="in_progress"' in client.get("/metrics").text)
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    for name in (
        'jobledger_heartbeats_total{result="recorded"}',
        'jobledger_jobs{queue="default",status="in_progress"}',
        "jobledger_stale_detections_total",
        'jobledger_requeues_total{reason="failed"}',
        "jobledger_dead_letters_total",
        "jobledger_alerts_sent_total",
        "jobledger_alerts_failed_total",
        'jobledger_projection_lag_events{view="job_status"}',
        'jobledger_rate_limit_decisions_total{preset="worker",result="admitted"',
        'jobledger_http_request_duration_seconds_bucket{le="0.005",method="POST"',
        "jobledger_gc_pause_seconds_bucket",
    ):
        assert name in text, name


def test_dead_letters_are_listed_and_redriven(client: httpx.Client) -> None:
    job_id = claimed(client, max_attempts=1)
    failed = client.post(
        f"/jobs/{job_id}/fail", json={"worker_id": "w1", "attempt": 1, "error": "fatal"}
    )
    assert failed.json()["status"] == "dead_lettered"
    wait_for(lambda: job_id in {j["job_id"] for j in client.get("/dlq").json()["jobs"]})

    dry = client.post("/dlq/redrive", json={"job_ids": [job_id], "dry_run": True}).json()
    assert dry["results"] == [{"job_id": job_id, "result": "would_redrive"}]
    done = client.post("/dlq/redrive", json={"job_ids": [job_id]}).json()
    assert (done["redriven"], done["results"][0]["result"]) == (1, "redriven")
    again = client.post("/dlq/redrive", json={"job_ids": [job_id]}).json()
    assert again["results"][0]["result"] == "not_dead_lettered"
    events = client.get(f"/jobs/{job_id}/history").json()["events"]
    assert events[-1]["type"] == "Redriven"
    assert events[-1]["data"]["actor"] == "api:open"


def test_queue_lists_a_customers_jobs_and_counts(client: httpx.Client) -> None:
    job_id = enqueue(client, queue="reports")
    wait_for(lambda: job_id in {j["job_id"] for j in client.get("/queue/acme").json()["jobs"]})
    body = client.get("/queue/acme", params={"status": "pending", "limit": 500}).json()
    assert body["customer_id"] == CUSTOMER
    assert all(job["status"] == "pending" for job in body["jobs"])
    assert body["counts"]["total"] >= body["counts"]["pending"] >= 1
    assert client.get("/queue/nobody").json()["counts"]["total"] == 0


SPEC_ROUTES = {
    ("post", "/jobs"), ("post", "/jobs/{job_id}/claim"), ("post", "/jobs/{job_id}/heartbeat"),
    ("post", "/heartbeats"), ("post", "/jobs/{job_id}/complete"),
    ("post", "/jobs/{job_id}/fail"), ("get", "/jobs/{job_id}"),
    ("get", "/jobs/{job_id}/history"), ("get", "/queue/{customer_id}"), ("get", "/dlq"),
    ("post", "/dlq/redrive"), ("get", "/health"), ("get", "/health/live"),
    ("get", "/health/ready"), ("get", "/metrics"),
}


def test_the_openapi_document_has_every_route_and_body(client: httpx.Client) -> None:
    document = client.get("/schema/openapi.json").json()
    found = {(m, p) for p, item in document["paths"].items() for m in item}
    assert found >= SPEC_ROUTES
    for method, path in SPEC_ROUTES:
        operation = document["paths"][path][method]
        if method == "post":
            schema = operation["requestBody"]["content"]["application/json"]["schema"]
            name = schema["$ref"].rsplit("/", 1)[1]
            assert document["components"]["schemas"][name]["additionalProperties"] is False
        assert any(code.startswith("2") for code in operation["responses"])


def _wait_for_fresh_minute(margin: float = 5.0) -> None:
    left = 60 - time.time() % 60
    if left < margin:
        time.sleep(left + 0.05)


def test_the_deployments_check_105_requests_100_pass_5_refused(tmp_path: Path) -> None:
    container = build(Settings(ledger_data_dir=tmp_path / "data"))
    try:
        with serve_in_thread(build_http(container)) as api, httpx.Client(
            base_url=api.base_url, timeout=10
        ) as http:
            _wait_for_fresh_minute()
            since = datetime.now(UTC) - timedelta(minutes=1)
            responses = [http.get(f"/queue/{CUSTOMER}") for _ in range(105)]
        # Stopping the server appended the limiter's tallies: the rate-limit view has them.
        store = container.backend.open_views()
        try:
            catch_up_unfed(store, [VIEWS["rate_limits"]])
            totals = RateLimitQueries(store).totals(since)
        finally:
            store.close()
    finally:
        container.close()
    assert [(t.subject, t.admitted, t.refused) for t in totals] == [("ip:127.0.0.1", 100, 5)]
    codes = [r.status_code for r in responses]
    assert codes == [200] * 100 + [429] * 5
    for index, response in enumerate(responses):
        headers = response.headers
        assert headers["x-ratelimit-limit"] == "100"
        assert headers["x-ratelimit-remaining"] == str(max(0, 99 - index))
        assert int(headers["x-ratelimit-reset"]) > time.time() - 1
        assert headers["ratelimit-policy"] == '"public";q=100;w=60'
        assert re.fullmatch(r'"public";r=\d+;t=\d+', headers["ratelimit"])
    for refused in responses[100:]:
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert refused.headers["content-type"].startswith("application/problem+json")
