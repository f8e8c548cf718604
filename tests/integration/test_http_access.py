"""API keys through a real server: roles, customer scope (404, never another customer's
jobs), revocation, and the ``auth`` preset against guessing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from adapters.http.wiring import build_http
from adapters.service.bootstrap import build, utc_now
from adapters.service.keys import KeyVerifier
from adapters.service.settings import Settings
from ledger.access import KeyStore, Role, new_key
from tests.support.http import RunningApi, serve_in_thread, wait_for


@dataclass
class Keys:
    store: KeyStore
    admin: str
    service: str
    worker: str
    staff: str
    acme_service: str
    acme_worker: str
    globex_service: str


@dataclass
class Served:
    running: RunningApi
    keys: Keys


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    container = build(Settings(ledger_data_dir=tmp_path_factory.mktemp("keys")))
    store = container.backend.key_store()

    def key(role: Role, customer: str | None = None) -> str:
        secret, record = new_key(role, customer, None, utc_now())
        store.add(record)
        return secret

    keys = Keys(
        store, key(Role.ADMIN), key(Role.SERVICE), key(Role.WORKER), key(Role.STAFF),
        key(Role.SERVICE, "acme"), key(Role.WORKER, "acme"), key(Role.SERVICE, "globex"),
    )
    parts = build_http(container)
    parts.access.verifier = KeyVerifier(store, ttl=0.2)
    try:
        with serve_in_thread(parts) as running:
            yield Served(running, keys)
    finally:
        container.close()


@pytest.fixture
def client(served: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.running.base_url, timeout=10) as http:
        yield http


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def enqueue(client: httpx.Client, key: str, customer: str) -> str:
    response = client.post("/jobs", json={"customer_id": customer}, headers=bearer(key))
    assert response.status_code == 201, response.text
    job_id: str = response.json()["job_id"]
    return job_id


def test_keys_are_required_once_one_exists(client: httpx.Client) -> None:
    response = client.post("/jobs", json={"customer_id": "acme"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.headers["content-type"].startswith("application/problem+json")
    for open_path in ("/health", "/health/live", "/metrics", "/schema/openapi.json"):
        assert client.get(open_path).status_code == 200, open_path


def test_bad_keys_are_401_then_429_for_that_address(client: httpx.Client) -> None:
    bad = ["jl_000000000000_" + "A" * 43, "not-a-key", "Basic", "jl_x"]
    headers = [{"authorization": k if k == "Basic" else f"Bearer {k}"} for k in bad + bad]
    codes = [client.get("/dlq", headers=h).status_code for h in headers]
    assert codes[:5] == [401] * 5  # the auth preset: 5 per 15 minutes
    assert codes[5:] == [429] * 3
    refused = client.get("/dlq", headers=bearer("wrong"))
    assert int(refused.headers["retry-after"]) > 0
    assert refused.headers["ratelimit-policy"] == '"auth";q=5;w=900'


def test_roles(served: Served, client: httpx.Client) -> None:
    keys = served.keys
    job_id = enqueue(client, keys.service, "acme")
    enqueue_as_worker = client.post(
        "/jobs", json={"customer_id": "a"}, headers=bearer(keys.worker)
    )
    assert enqueue_as_worker.status_code == 403
    claim_body = {"worker_id": "w"}
    claim = client.post(f"/jobs/{job_id}/claim", json=claim_body, headers=bearer(keys.service))
    assert claim.status_code == 403
    assert client.get("/dlq", headers=bearer(keys.service)).status_code == 403
    assert client.get("/dlq", headers=bearer(keys.staff)).status_code == 200
    assert client.get(f"/jobs/{job_id}", headers=bearer(keys.staff)).status_code == 200
    claim = client.post(f"/jobs/{job_id}/claim", json=claim_body, headers=bearer(keys.worker))
    assert claim.status_code == 200
    for path in (f"/jobs/{job_id}", f"/jobs/{job_id}/history", "/queue/acme", "/dlq"):
        assert client.get(path, headers=bearer(keys.admin)).status_code == 200, path
    redrive = client.post("/dlq/redrive", json={"all": True}, headers=bearer(keys.admin))
    assert redrive.status_code == 200


def test_a_customer_key_never_sees_another_customers_jobs(
    served: Served, client: httpx.Client
) -> None:
    keys = served.keys
    theirs = enqueue(client, keys.globex_service, "globex")
    ours = enqueue(client, keys.acme_service, "acme")
    acme = bearer(keys.acme_service)
    for path in (f"/jobs/{theirs}", f"/jobs/{theirs}/history", "/queue/globex"):
        response = client.get(path, headers=acme)
        assert response.status_code == 404, path
        assert "globex" not in response.text or path == "/queue/globex"
    assert client.get(f"/jobs/{ours}", headers=acme).status_code == 200
    assert client.get("/queue/acme", headers=acme).status_code == 200
    assert client.post("/jobs", json={"customer_id": "globex"}, headers=acme).status_code == 403

    worker = bearer(keys.acme_worker)
    assert client.post(
        f"/jobs/{theirs}/claim", json={"worker_id": "w"}, headers=worker
    ).status_code == 404
    assert client.post(
        f"/jobs/{ours}/claim", json={"worker_id": "w"}, headers=worker
    ).status_code == 200
    batch = client.post("/heartbeats", headers=worker, json={"worker_id": "w", "jobs": [
        {"job_id": ours, "attempt": 1}, {"job_id": theirs, "attempt": 1},
    ]}).json()
    assert [r["result"] for r in batch["results"]] == ["recorded", "not_found"]
    # a worker key scoped to acme may read acme's queue (that customer's key), not globex's
    assert client.get("/queue/acme", headers=worker).status_code == 200
    assert client.get("/queue/globex", headers=worker).status_code == 404


def test_a_revoked_key_stops_working(served: Served, client: httpx.Client) -> None:
    secret, record = new_key(Role.SERVICE, None, "short-lived", utc_now())
    served.keys.store.add(record)
    assert client.get("/queue/acme", headers=bearer(secret)).status_code == 200
    served.keys.store.revoke(record.key_id, utc_now())
    # 401, or 429 once this address has used up the auth preset (an earlier test does)
    wait_for(
        lambda: client.get("/queue/acme", headers=bearer(secret)).status_code in {401, 429}
    )
    listed = {r.key_id: r for r in served.keys.store.list()}
    assert listed[record.key_id].revoked_at is not None
    assert listed[record.key_id].key_hash != secret
