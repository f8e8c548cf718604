"""Operator controls over HTTP (ADR 100) on SQLite and PostgreSQL: bulk actions and
queue pause, resume and limit, with their access rules, actors and bad input."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.service.bootstrap import utc_now
from ledger.action import Action
from ledger.commands import EnqueueJob, RecordQueueDeadLetter
from tests.support.http import wait_for
from tests.support.keyed_api import Api, keyed_api
from tests.support.projection_env import BACKENDS


@pytest.fixture(params=BACKENDS)
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Api]:
    with keyed_api(request, tmp_path) as running:
        yield running


def finished(api: Api, answer: httpx.Response) -> dict[str, Any]:
    """The action a 202 from ``POST /actions`` started, once it has finished: its
    ``Location`` polled until the background run records ``Finished``."""
    assert answer.status_code == 202, answer.text
    location = answer.headers["Location"]
    assert location == f"/actions/{answer.json()['action_id']}"
    shown: dict[str, Any] = {}

    def done() -> bool:
        shown.update(api.http.get(location, headers=api.as_("staff")).json())
        return bool(shown["state"] == "finished")

    wait_for(done, timeout=60)
    return shown


def dead_letters(api: Api, count: int, customer: str = "acme") -> list[str]:
    ledger = api.container.ledger
    made = ledger.execute_batch([EnqueueJob(customer_id=customer) for _ in range(count)],
                                utc_now())
    ids = [r.job_id for r in made if not isinstance(r, Exception)]
    ledger.execute_batch(
        [RecordQueueDeadLetter(job_id=i, message_id=f"m-{i}", receive_count=3) for i in ids],
        utc_now(),
    )
    return [str(i) for i in ids]


def counted(api: Api, body: dict[str, Any], expected: int) -> bool:
    answer = api.http.post("/actions", json=body | {"dry_run": True}, headers=api.as_("staff"))
    assert answer.status_code == 200, answer.text
    return bool(answer.json()["count"] == expected)


def test_a_service_key_may_not_run_bulk_actions_or_pause(api: Api) -> None:
    head = api.head()
    for name in ("acme", "worker"):
        assert api.http.post("/actions", json={"kind": "retry"},
                             headers=api.as_(name)).status_code == 403
        assert api.http.post("/queues/default/pause", json={},
                             headers=api.as_(name)).status_code == 403
        assert api.http.get("/queues", headers=api.as_(name)).status_code == 403
    assert api.head() == head


def test_staff_retry_dead_letters_by_filter_after_a_dry_run(api: Api) -> None:
    ids = dead_letters(api, 25)
    others = dead_letters(api, 5, customer="globex")
    body = {"kind": "retry", "filter": {"customer_id": "acme"}, "reason": "fixed the bug"}
    wait_for(lambda: counted(api, body, 25))
    head = api.head()
    answer = api.http.post("/actions", json=body | {"dry_run": True}, headers=api.as_("staff"))
    preview = answer.json()
    assert [j["job_id"] for j in preview["sample"]] == sorted(ids)[:10]
    assert api.head() == head  # the dry run appended nothing
    done = finished(api, api.http.post("/actions", json=body, headers=api.as_("staff")))
    staff_id = api.keys["staff"][1]
    assert (done["state"], done["total"], done["acted"]) == ("finished", 25, 25)
    assert done["actor"] == f"api:key:{staff_id}:staff"
    shown = api.http.get(f"/actions/{done['action_id']}", headers=api.as_("admin")).json()
    assert shown == done
    ledger = api.container.ledger
    assert all(ledger.get_job(j).status == "pending" for j in map(_uuid, ids))
    assert all(ledger.get_job(j).status == "dead_lettered" for j in map(_uuid, others))
    assert isinstance(ledger.repository.get(_uuid(done["action_id"])), Action)
    again = api.http.post(f"/actions/{done['action_id']}/resume", headers=api.as_("staff"))
    assert again.status_code == 409, again.text


@pytest.mark.parametrize("body", [
    {"kind": "explode"},
    {"kind": "cancel", "filter": {"status": "sleeping"}},
    {"kind": "cancel", "filter": {"customer_id": "a\u0000b"}},
    {"kind": "retry", "reason": "why\u0000"},
    {"kind": "retry", "filter": {"since": "2026-01-01T00:00:00"}},
    {"kind": "retry", "filter": {"colour": "red"}},
])
def test_bad_bulk_actions_are_4xx_and_append_nothing(api: Api, body: dict[str, Any]) -> None:
    head = api.head()
    answer = api.http.post("/actions", json=body, headers=api.as_("staff"))
    assert 400 <= answer.status_code < 500, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert api.head() == head


def test_an_unknown_action_is_404(api: Api) -> None:
    answer = api.http.get("/actions/00000000-0000-0000-0000-000000000001",
                          headers=api.as_("staff"))
    assert answer.status_code == 404


def test_pause_resume_and_limit_a_queue(api: Api) -> None:
    dead_letters(api, 1)
    api.container.ledger.execute(EnqueueJob(customer_id="acme", queue="emails"), utc_now())
    staff_id = api.keys["staff"][1]
    paused = api.http.post("/queues/emails/pause", json={"reason": "smtp down"},
                           headers=api.as_("staff"))
    assert paused.status_code == 200, paused.text
    assert (paused.json()["paused"], paused.json()["changed"]) == (True, True)

    def listed_queues() -> dict[str, Any]:
        found = api.http.get("/queues", headers=api.as_("staff")).json()
        return {q["queue"]: q for q in found}

    wait_for(lambda: "emails" in listed_queues())
    listed = listed_queues()
    assert listed["emails"]["paused_by"] == f"api:key:{staff_id}:staff"
    assert listed["emails"]["paused_reason"] == "smtp down"
    assert listed["default"]["paused"] is False
    limited = api.http.post("/queues/emails/limit", json={"max_running": 5},
                            headers=api.as_("admin"))
    assert limited.json()["max_running"] == 5
    resumed = api.http.post("/queues/emails/resume", json={}, headers=api.as_("staff"))
    assert resumed.json()["paused"] is False
    queue = api.container.ledger.get_queue("emails")
    assert queue is not None
    assert (queue.max_running, queue.paused) == (5, False)


@pytest.mark.parametrize(("path", "body"), [
    ("/queues/emails/limit", {"max_running": -1}),
    ("/queues/emails/limit", {"max_running": 0}),
    ("/queues/emails/limit", {}),
    ("/queues/emails/pause", {"reason": "a\u0000b"}),
    ("/queues/emails/pause", {"reason": "x" * 501}),
    ("/queues/bad%20name/pause", {}),
])
def test_bad_queue_controls_are_4xx_and_append_nothing(
    api: Api, path: str, body: dict[str, Any]
) -> None:
    head = api.head()
    answer = api.http.post(path, json=body, headers=api.as_("staff"))
    assert 400 <= answer.status_code < 500, answer.text
    assert api.head() == head
    assert api.container.ledger.get_queue("emails") is None


def test_the_controls_are_in_the_openapi_document(api: Api) -> None:
    paths = api.http.get("/schema/openapi.json").json()["paths"]
    for path in ("/actions", "/actions/{action_id}", "/actions/{action_id}/resume",
                 "/queues", "/queues/{queue}/pause", "/queues/{queue}/resume",
                 "/queues/{queue}/limit"):
        assert path in paths, path


def _uuid(text: str) -> Any:
    from uuid import UUID

    return UUID(text)


def enqueue(api: Api, customer: str = "acme", queue: str = "default") -> str:
    outcome = api.container.ledger.execute(EnqueueJob(customer_id=customer, queue=queue),
                                           utc_now())
    return str(outcome.job_id)


def test_a_service_key_cancels_its_own_customers_job_with_a_reason(api: Api) -> None:
    job_id = enqueue(api)
    answer = api.http.post(f"/jobs/{job_id}/cancel", json={"reason": "customer asked"},
                           headers=api.as_("acme"))
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "cancelled"
    history = api.http.get(f"/jobs/{job_id}/history", headers=api.as_("acme")).json()
    (cancelled,) = [e for e in history["events"] if e["type"] == "Cancelled"]
    assert cancelled["data"]["actor"] == f"api:key:{api.keys['acme'][1]}:service"
    assert cancelled["data"]["reason"] == "customer asked"
    again = api.http.post(f"/jobs/{job_id}/cancel", json={}, headers=api.as_("staff"))
    assert again.status_code == 409, again.text


def test_another_customers_job_is_404_and_nothing_is_appended(api: Api) -> None:
    job_id = enqueue(api, customer="globex")
    wait_for(lambda: api.http.get(f"/jobs/{job_id}", headers=api.as_("staff")).status_code
             == 200)
    head = api.head()
    for path in (f"/jobs/{job_id}/cancel", f"/jobs/{job_id}/retry"):
        answer = api.http.post(path, json={}, headers=api.as_("acme"))
        assert answer.status_code == 404, answer.text
    bad = api.http.post(f"/jobs/{job_id}/cancel", json={"reason": "x\u0000"},
                        headers=api.as_("staff"))
    assert bad.status_code == 422, bad.text
    assert api.head() == head
    assert api.container.ledger.get_job(_uuid(job_id)).status == "pending"


def test_retry_one_dead_letter(api: Api) -> None:
    (job_id,) = dead_letters(api, 1)
    answer = api.http.post(f"/jobs/{job_id}/retry", json={"reason": "fixed"},
                           headers=api.as_("acme"))
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "pending"
    assert api.http.post(f"/jobs/{job_id}/retry", json={},
                         headers=api.as_("acme")).status_code == 409


def test_a_bulk_cancel_of_2500_jobs_over_http_runs_in_3_batches(api: Api) -> None:
    ledger = api.container.ledger
    made = ledger.execute_batch(
        [EnqueueJob(customer_id="acme", queue="emails") for _ in range(2500)], utc_now())
    body = {"kind": "cancel", "filter": {"queue": "emails"}, "reason": "bad template"}
    wait_for(lambda: counted(api, body, 2500), timeout=30)
    answer = api.http.post("/actions", json=body, headers=api.as_("staff"))
    started = answer.json()  # answered before the batches ran
    assert (answer.status_code, started["state"], started["total"], started["done"]) == (
        202, "running", 2500, 0)
    done = finished(api, answer)
    assert (done["state"], done["total"], done["done"], done["acted"]) == (
        "finished", 2500, 2500, 2500)
    events = list(ledger.events.get(_uuid(done["action_id"])))
    assert [type(e).__name__ for e in events] == [
        "Started", "Progressed", "Progressed", "Progressed", "Finished"]
    first = made[0]
    assert not isinstance(first, Exception)
    history = api.http.get(f"/jobs/{first.job_id}/history", headers=api.as_("staff")).json()
    assert history["events"][-1]["data"]["action_id"] == done["action_id"]


def test_enqueue_with_a_delay_or_a_time_is_scheduled(api: Api) -> None:
    delayed = api.http.post("/jobs", json={"customer_id": "acme", "delay_seconds": 3600,
                                           "priority": 7}, headers=api.as_("acme"))
    assert delayed.status_code == 201, delayed.text
    assert delayed.json()["status"] == "scheduled"
    job = api.container.ledger.get_job(_uuid(delayed.json()["job_id"]))
    assert job.priority == 7
    in_a_month = (utc_now() + timedelta(days=30)).isoformat()
    at = api.http.post("/jobs", json={"customer_id": "acme", "run_at": in_a_month},
                       headers=api.as_("acme"))
    assert at.json()["status"] == "scheduled", at.text
    now = api.http.post("/jobs", json={"customer_id": "acme", "delay_seconds": 0},
                        headers=api.as_("acme"))
    assert now.json()["status"] == "pending", now.text
    head = api.head()
    for bad in ({"run_at": "2999-01-01T00:00:00"}, {"priority": 101}, {"delay_seconds": -1},
                {"run_at": "2999-01-01T00:00:00Z", "delay_seconds": 5},
                {"run_at": "2999-01-01T00:00:00Z"},  # more than 366 days ahead
                {"run_at": "9999-12-31T23:59:59-05:00"}):  # year 10000 in UTC
        answer = api.http.post("/jobs", json={"customer_id": "acme"} | bad,
                               headers=api.as_("acme"))
        assert answer.status_code == 422, (bad, answer.text)
    assert api.head() == head


def test_a_customers_queue_counts_scheduled_and_cancelled_jobs(api: Api) -> None:
    scheduled = api.http.post("/jobs", json={"customer_id": "acme", "delay_seconds": 600},
                              headers=api.as_("acme")).json()["job_id"]
    cancelled = enqueue(api)
    api.http.post(f"/jobs/{cancelled}/cancel", json={}, headers=api.as_("acme"))

    def counts() -> dict[str, int]:
        answer = api.http.get("/queue/acme", headers=api.as_("acme"))
        assert answer.status_code == 200, answer.text
        found: dict[str, int] = answer.json()["counts"]
        return found

    wait_for(lambda: counts()["cancelled"] == 1)
    assert (counts()["scheduled"], counts()["cancelled"], counts()["total"]) == (1, 1, 2)
    assert scheduled


def test_a_paused_queue_without_jobs_is_listed(api: Api) -> None:
    api.http.post("/queues/nightly/pause", json={"reason": "holiday"}, headers=api.as_("staff"))

    def nightly() -> dict[str, Any] | None:
        found = api.http.get("/queues", headers=api.as_("staff")).json()
        return next((q for q in found if q["queue"] == "nightly"), None)

    wait_for(lambda: nightly() is not None)
    shown = nightly()
    assert shown is not None
    assert (shown["paused"], shown["paused_reason"], shown["pending"]) == (True, "holiday", 0)
