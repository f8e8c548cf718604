"""The HTTP API's edges (issue 13, "500s and wrong answers"), through a real server with
API keys, on SQLite and PostgreSQL: odd bytes in the path, deeply nested bodies, integral
floats, the date-time format, the bearer scheme in the OpenAPI document and the README,
and the ``/metrics`` content type."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest

from adapters.http.wiring import build_http
from adapters.service.bootstrap import build, utc_now
from adapters.service.settings import Settings
from ledger.access import Role, new_key
from tests.support.http import RunningApi, serve_in_thread, settled_head
from tests.support.pg import PostgresServer

README = Path(__file__).resolve().parents[2] / "README.md"
MAX_DEPTH = 64
"""The documented limit on how deeply a request body may nest."""


@dataclass
class Served:
    running: RunningApi
    admin: str
    service: str
    """An unscoped service key: it may read any customer's queue."""


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    database_url = None
    if request.param == "postgres":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        name = f"job_ledger_edges_{uuid4().hex[:12]}"
        database_url = server.create_database(name)
    settings = Settings(ledger_data_dir=tmp_path_factory.mktemp("edges"), database_url=database_url)
    container = build(settings)
    keys = []
    for role in (Role.ADMIN, Role.SERVICE):
        secret, record = new_key(role, None, "edges", utc_now())
        container.backend.key_store().add(record)
        keys.append(secret)
    try:
        with serve_in_thread(build_http(container)) as running:
            yield Served(running, *keys)
    finally:
        container.close()
        if database_url is not None:
            server.drop_database(name)


@pytest.fixture
def admin(served: Served) -> Iterator[httpx.Client]:
    headers = {"authorization": f"Bearer {served.admin}"}
    with httpx.Client(base_url=served.running.base_url, timeout=30, headers=headers) as http:
        yield http


def head(served: Served) -> int:
    return settled_head(served.running)


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["detail"]
    return body


# -- the path ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/queue/a%00b", "/queue/a%1Fb", "/queue/%00"])
def test_a_control_character_in_a_path_parameter_is_a_400_with_a_reason(
    served: Served, path: str
) -> None:
    with httpx.Client(base_url=served.running.base_url, timeout=30) as http:
        answer = http.get(path, headers={"authorization": f"Bearer {served.service}"})
    body = problem(answer, 400)
    assert body["code"] == "invalid_path"
    assert "customer_id" in body["detail"]
    assert "control character" in body["detail"]


@pytest.mark.parametrize("path", ["/queue/%FF%FE", "/queue/a%ED%A0%80b", "/queue/a%C3"])
def test_a_path_that_is_not_utf8_is_a_400(admin: httpx.Client, path: str) -> None:
    body = problem(admin.get(path), 400)
    assert body["code"] == "invalid_path"
    assert "UTF-8" in body["detail"]


def test_ordinary_customer_ids_still_read_their_queue(admin: httpx.Client) -> None:
    assert admin.post("/jobs", json={"customer_id": "café ☕"}).status_code == 201
    answer = admin.get("/queue/caf%C3%A9%20%E2%98%95")
    assert answer.status_code == 200, answer.text
    assert answer.json()["customer_id"] == "café ☕"


# -- nesting ----------------------------------------------------------------------------------


def nested(depth: int) -> str:
    """A body whose payload makes the whole body ``depth`` levels deep."""
    inner = depth - 1
    return '{"customer_id": "acme", "payload": ' + "[" * inner + "]" * inner + "}"


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 990, 100_000])
def test_a_body_nested_beyond_the_limit_is_a_400_naming_it(
    served: Served, admin: httpx.Client, depth: int
) -> None:
    before = head(served)
    answer = admin.post("/jobs", content=nested(depth),
                        headers={"content-type": "application/json"})
    body = problem(answer, 400)
    assert body["code"] == "too_deep"
    assert f"{MAX_DEPTH} levels" in body["detail"]
    assert head(served) == before


def test_a_body_at_the_limit_is_accepted_and_brackets_in_strings_do_not_count(
    admin: httpx.Client,
) -> None:
    answer = admin.post("/jobs", content=nested(MAX_DEPTH),
                        headers={"content-type": "application/json"})
    assert answer.status_code == 201, answer.text
    flat = {"customer_id": "acme", "payload": {"text": "[{" * 5000 + '\\"[' * 100}}
    assert admin.post("/jobs", json=flat).status_code == 201


def test_the_depth_limit_is_documented(admin: httpx.Client) -> None:
    description = admin.get("/schema/openapi.json").json()["info"]["description"]
    assert f"{MAX_DEPTH} levels" in description
    assert f"{MAX_DEPTH} levels" in README.read_text()


# -- numbers and dates ------------------------------------------------------------------------


def test_integral_floats_are_integers_as_the_schema_says(admin: httpx.Client) -> None:
    enqueued = admin.post("/jobs", json={"customer_id": "acme", "max_attempts": 17.0})
    assert enqueued.status_code == 201, enqueued.text
    job_id = enqueued.json()["job_id"]
    history = admin.get(f"/jobs/{job_id}/history").json()["events"]
    assert history[0]["data"]["max_attempts"] == 17
    assert admin.post(f"/jobs/{job_id}/claim", json={"worker_id": "w"}).status_code == 200
    beat = admin.post(f"/jobs/{job_id}/heartbeat", json={"worker_id": "w", "attempt": 1.0})
    assert beat.status_code == 200, beat.text
    batch = admin.post("/heartbeats", json={"worker_id": "w",
                                            "jobs": [{"job_id": job_id, "attempt": 1e0}]})
    assert batch.json()["recorded"] == 1, batch.text
    for refused in (17.5, "17", 1e300, True):
        answer = admin.post("/jobs", json={"customer_id": "acme", "max_attempts": refused})
        assert problem(answer, 422)["code"] == "invalid_body"
    problem(admin.post(f"/jobs/{job_id}/heartbeat",
                       json={"worker_id": "w", "attempt": 1.5}), 422)


def test_worker_time_is_a_date_time_in_the_schema_and_any_such_value_is_accepted(
    admin: httpx.Client,
) -> None:
    schemas = admin.get("/schema/openapi.json").json()["components"]["schemas"]
    for name in ("ClaimRequest", "HeartbeatRequest", "CompleteRequest", "FailRequest",
                 "HeartbeatBatchRequest"):
        worker_time = schemas[name]["properties"]["worker_time"]
        formats = [s.get("format") for s in worker_time.get("anyOf", [worker_time])]
        assert "date-time" in formats, (name, worker_time)
    for stamp in ("2026-11-28T15:31:45Z", "0001-01-01T00:00:00+23:59",
                  "9999-12-31T23:59:59.999999-23:59", "2026-11-28T15:31:45.1+05:30"):
        job_id = admin.post("/jobs", json={"customer_id": "acme"}).json()["job_id"]
        claim = admin.post(f"/jobs/{job_id}/claim",
                           json={"worker_id": "w", "worker_time": stamp})
        assert claim.status_code == 200, (stamp, claim.text)
        beat = admin.post(f"/jobs/{job_id}/heartbeat",
                          json={"worker_id": "w", "attempt": 1, "worker_time": stamp})
        assert beat.status_code == 200, (stamp, beat.text)
    claim = admin.post(f"/jobs/{job_id}/claim", json={"worker_id": "w", "worker_time": "soon"})
    assert problem(claim, 422)["code"] == "invalid_body"


# -- the bearer scheme, in the document and the README ----------------------------------------


def test_the_openapi_document_declares_the_bearer_scheme_on_every_keyed_route(
    admin: httpx.Client,
) -> None:
    document = admin.get("/schema/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    assert schemes == {"bearer": {
        "type": "http", "scheme": "bearer", "description": schemes["bearer"]["description"],
    }}
    assert "Authorization: Bearer" in schemes["bearer"]["description"]
    paths = document["paths"]
    for path, method in (("/jobs", "post"), ("/queue/{customer_id}", "get"), ("/dlq", "get"),
                         ("/jobs/{job_id}/heartbeat", "post"), ("/dlq/redrive", "post")):
        operation = paths[path][method]
        assert operation["security"] == [{"bearer": []}], (path, method)
        assert "401" in operation["responses"]
    for path in ("/health", "/health/live", "/metrics"):
        assert "security" not in paths[path]["get"], path


def test_the_readme_names_the_auth_header_the_api_accepts(served: Served) -> None:
    found = re.search(r"Authorization: Bearer <key>", README.read_text())
    assert found, "the README's HTTP section names no auth header"
    name, value = found.group(0).replace("<key>", served.admin).split(": ", 1)
    with httpx.Client(base_url=served.running.base_url, timeout=30) as http:
        assert http.post("/jobs", json={"customer_id": "acme"},
                         headers={name: value}).status_code == 201
        assert http.post("/jobs", json={"customer_id": "acme"}).status_code == 401


# -- /metrics ---------------------------------------------------------------------------------


def test_the_metrics_content_type_names_its_charset_once(admin: httpx.Client) -> None:
    answer = admin.get("/metrics")
    assert answer.status_code == 200
    content_type = answer.headers["content-type"]
    assert content_type.startswith("text/plain; version=")
    assert content_type.count("charset=") == 1, content_type
    document = admin.get("/schema/openapi.json").json()
    documented = document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert content_type in documented, (content_type, list(documented))
