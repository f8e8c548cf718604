"""Time travel and what-if over real HTTP with keys (issue 16): a job as of a moment and
its states (a scoped key sees only its customer's jobs: 404 otherwise), odd moments 400,
the replays for staff only, and nothing appended by any of it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from adapters.http.wiring import build_http
from adapters.service.bootstrap import Container, build, utc_now
from adapters.service.keys import KeyVerifier
from adapters.service.settings import Settings
from ledger.access import Role, new_key
from ledger.commands import ClaimJob, EnqueueJob, RecordHeartbeat
from tests.support.http import projections_running, serve_in_thread, wait_for
from tests.support.log import recorded_head


@dataclass
class World:
    client: httpx.Client
    container: Container
    keys: dict[str, str]
    job_id: str


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    container = build(Settings(ledger_data_dir=tmp_path_factory.mktemp("timetravel")))
    store = container.backend.key_store()
    keys = {}
    for name, role, customer in (("staff", Role.STAFF, None), ("acme", Role.SERVICE, "acme"),
                                 ("globex", Role.SERVICE, "globex")):
        secret, record = new_key(role, customer, None, utc_now())
        store.add(record)
        keys[name] = secret
    ledger = container.ledger
    job_id = ledger.execute(EnqueueJob(customer_id="acme"), utc_now()).job_id
    ledger.execute(ClaimJob(job_id=job_id, worker_id="w"), utc_now())
    for _ in range(3):
        ledger.execute(RecordHeartbeat(job_id=job_id, attempt=1, worker_id="w"), utc_now())
    parts = build_http(container)
    parts.access.verifier = KeyVerifier(store, ttl=0.2)
    try:
        with projections_running(container), serve_in_thread(parts) as running, \
                httpx.Client(base_url=running.base_url, timeout=10) as client:
            wait_for(lambda: client.get(f"/jobs/{job_id}", headers=_bearer(keys["acme"]))
                     .status_code == 200)
            yield World(client, container, keys, str(job_id))
    finally:
        container.close()


def _bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def get(world: World, path: str, key: str, **params: str | int) -> httpx.Response:
    return world.client.get(path, params=params, headers=_bearer(world.keys[key]))


def test_a_job_as_of_a_position_and_its_states(world: World) -> None:
    then = get(world, f"/jobs/{world.job_id}", "acme", as_of="@3")
    assert then.status_code == 200, then.text
    body = then.json()
    assert (body["position"], body["version"]) == (3, 3)
    assert (body["job"]["status"], body["job"]["heartbeats"]) == ("in_progress", 1)
    assert get(world, f"/jobs/{world.job_id}", "acme").json()["heartbeats"] == 3
    first = get(world, f"/jobs/{world.job_id}/states", "acme", limit=2).json()
    assert [s["event"] for s in first["states"]] == ["Enqueued", "Claimed"]
    assert first["next_after"] == 2
    rest = get(world, f"/jobs/{world.job_id}/states", "staff", after=2).json()
    assert [s["job"]["heartbeats"] for s in rest["states"]] == [1, 2, 3]
    assert rest["next_after"] is None


def test_another_customer_and_odd_moments(world: World) -> None:
    path = f"/jobs/{world.job_id}"
    assert get(world, path, "globex", as_of="@3").status_code == 404
    assert get(world, f"{path}/states", "globex").status_code == 404
    for odd in ("@-1", "yesterday", "2026-12-01T03:00", "@" + "9" * 30, "x" * 65, "@1\x00"):
        answer = get(world, path, "acme", as_of=odd)
        assert answer.status_code == 400, (odd, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
    beyond = get(world, path, "acme", as_of="@999999")
    assert (beyond.status_code, beyond.json()["code"]) == (400, "beyond_head")
    before = get(world, path, "acme", as_of="2000-01-01T00:00Z")
    assert (before.status_code, before.json()["code"]) == (404, "job_not_yet_enqueued")
    last = get(world, path, "acme", as_of="9999-12-31T23:59:59Z")  # no overflow: the job now
    assert (last.status_code, last.json()["job"]["status"]) == (200, "in_progress"), last.text
    past = get(world, path, "acme", as_of="9999-12-31T23:59:59-01:00")
    assert (past.status_code, past.json()["code"]) == (400, "invalid_moment"), past.text
    assert get(world, f"{path}/states", "acme", after=-1).status_code == 400
    assert get(world, f"{path}/states", "acme", limit=10_000).status_code == 400


def test_replays_are_for_staff_and_append_nothing(world: World) -> None:
    head = recorded_head(world.container.ledger.recorder)
    stale = get(world, "/replay/stale", "staff", threshold="1ms", interval="1ms", since="1d")
    assert stale.status_code == 200, stale.text
    assert stale.json()["events"] == 4  # the claim and heartbeats (not the enqueue)
    alerts = get(world, "/replay/alerts", "staff", group_wait="60s")
    assert (alerts.status_code, alerts.json()["dead_letters"]) == (200, 0)
    assert get(world, "/replay/stale", "acme", threshold="5m").status_code == 403
    for odd in ({"threshold": "-5m"}, {"threshold": "5y"}, {"threshold": "0"},
                {"threshold": "5m", "since": "100000d"},
                {"threshold": "5m", "interval": "nan"}):
        answer = get(world, "/replay/stale", "staff", **odd)
        assert answer.status_code == 400, (odd, answer.text)
    assert recorded_head(world.container.ledger.recorder) == head
