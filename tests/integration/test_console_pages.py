"""The web console (issue 15) against a real server: every page renders from real data
without JavaScript, sign-in and out, CSRF, roles, hostile text, keyset pagination."""

from __future__ import annotations

import html
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import pytest

from adapters.service.bootstrap import utc_now
from ledger.commands import ClaimJob, EnqueueJob, FailJob, RecordHeartbeat
from ledger.job import Job
from tests.support.console import ConsoleApi, console_api, csrf_of
from tests.support.http import wait_for
from tests.support.projection_env import BACKENDS, make_backend

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture(params=BACKENDS)
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ConsoleApi]:
    backend = make_backend(request, tmp_path)
    try:
        with console_api(backend) as running:
            yield running
    finally:
        backend.close()


def dead_letter(api: ConsoleApi, error: str = HOSTILE, customer: str = "acme") -> UUID:
    """A job that ran once with 5 heartbeats, failed with ``error`` and is dead-lettered."""
    ledger = api.container.ledger
    now = utc_now()
    (made,) = ledger.execute_batch(
        [EnqueueJob(customer_id=customer, queue="emails", max_attempts=1,
                    payload={"note": HOSTILE})], now)
    assert not isinstance(made, Exception)
    job_id = made.job_id
    ledger.execute_batch([ClaimJob(job_id=job_id, worker_id="w-1")], now)
    for i in range(5):
        ledger.execute_batch([RecordHeartbeat(job_id=job_id, attempt=1, worker_id="w-1")],
                             now + timedelta(seconds=i))
    ledger.execute_batch([FailJob(job_id=job_id, attempt=1, worker_id="w-1", error=error)],
                         now + timedelta(seconds=6))
    return job_id


def seen(api: ConsoleApi, job_id: UUID, status: str) -> None:
    with api.signed_in("staff") as client:
        wait_for(lambda: f'data-testid="job-status">{status}<' in
                 client.get(f"/ui/jobs/{job_id}").text)


def test_every_page_renders_from_real_data_without_javascript(api: ConsoleApi) -> None:
    job_id = dead_letter(api)
    seen(api, job_id, "dead_lettered")
    with api.signed_in("staff") as client:
        for path in ("/ui", "/ui/jobs", f"/ui/jobs/{job_id}", "/ui/jobs?status=dead_lettered",
                     f"/ui/jobs/{job_id}?at=2", "/ui/overview/health"):
            answer = client.get(path)
            assert answer.status_code == 200, (path, answer.text[:500])
            assert answer.headers["content-type"].startswith("text/html")
            assert "script-src 'self'" in answer.headers["content-security-policy"]
        page = client.get(f"/ui/jobs/{job_id}").text
        assert "5 heartbeats" in page  # folded into one row
        assert 'data-testid="slack-payload"' in page
        assert 'data-testid="lane-1"' in page
        assert "after its event 2" in client.get(f"/ui/jobs/{job_id}?at=2").text
        listed = client.get("/ui/jobs?status=dead_lettered&customer_id=acme").text
        assert str(job_id) in listed
        assert client.get("/ui/static/vendor/htmx-2.0.4.min.js").status_code == 200


def test_hostile_job_text_is_escaped_everywhere(api: ConsoleApi) -> None:
    job_id = dead_letter(api)
    seen(api, job_id, "dead_lettered")
    with api.signed_in("staff") as client:
        for path in (f"/ui/jobs/{job_id}", "/ui/jobs?status=dead_lettered"):
            text = client.get(path).text
            assert "<script>alert" not in text
            assert "<img src=x" not in text
            assert html.escape(HOSTILE)[:30] in text or "&lt;script&gt;" in text


def test_sign_in_and_out_and_bad_keys(api: ConsoleApi) -> None:
    with api.client() as client:
        answer = client.get("/ui/jobs")
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/ui/login")
        token = csrf_of(client.get("/ui/login").text)
        bad = client.post("/ui/login", data={"csrf": token, "api_key": "jl_nope"})
        assert bad.status_code == 401
        service = client.post("/ui/login", data={"csrf": token, "api_key": api.keys["service"]})
        assert service.status_code == 401  # a service key may not use the console
        good = client.post("/ui/login", data={"csrf": token, "api_key": api.keys["staff"],
                                              "next": "https://evil.example/"})
        assert good.status_code == 303
        assert good.headers["location"] == "/ui"
        cookie = good.headers["set-cookie"].lower()
        assert "httponly" in cookie
        assert "samesite=strict" in cookie
        assert "path=/ui" in cookie
        assert client.get("/ui/jobs").status_code == 200
        token = csrf_of(client.get("/ui").text)
        assert client.post("/ui/logout", data={"csrf": token}).status_code == 303
        assert client.get("/ui/jobs").status_code == 303


def test_an_admin_redrives_and_the_event_names_the_key(api: ConsoleApi) -> None:
    job_id = dead_letter(api)
    seen(api, job_id, "dead_lettered")
    with api.signed_in("admin") as client:
        token = csrf_of(client.get(f"/ui/jobs/{job_id}").text)
        answer = client.post(f"/ui/jobs/{job_id}/retry", data={"csrf": token, "reason": "fixed"})
        assert answer.status_code == 303, answer.text
    last = api.container.ledger.history(job_id)[-1]
    assert isinstance(last, Job.Redriven)
    assert last.actor.startswith("ui:key:")
    assert last.actor.endswith(":admin")
    assert last.reason == "fixed"


def test_without_the_csrf_token_or_as_staff_nothing_is_appended(api: ConsoleApi) -> None:
    job_id = dead_letter(api)
    seen(api, job_id, "dead_lettered")
    head = api.head()
    with api.signed_in("admin") as admin:
        assert admin.post(f"/ui/jobs/{job_id}/retry", data={}).status_code == 403
        assert admin.post(f"/ui/jobs/{job_id}/retry", data={"csrf": "x" * 64}).status_code == 403
    with api.signed_in("staff") as staff:
        token = csrf_of(staff.get(f"/ui/jobs/{job_id}").text)
        refused = staff.post(f"/ui/jobs/{job_id}/retry", data={"csrf": token})
        assert refused.status_code == 403
        assert "admin" in refused.text
        confirm = staff.get("/ui/jobs/confirm", params={"do": "retry:all"})
        assert confirm.status_code == 200
        assert 'data-testid="bulk-form"' not in confirm.text
        assert staff.post("/ui/jobs/bulk", data={"csrf": token, "do": "retry:all"}
                          ).status_code == 403
    with api.client() as anonymous:
        token = csrf_of(anonymous.get("/ui/login").text)
        assert anonymous.post(f"/ui/jobs/{job_id}/retry", data={"csrf": token}
                              ).status_code == 401
    assert api.head() == head


def test_keyset_pagination_walks_every_job_once(api: ConsoleApi) -> None:
    made = api.container.ledger.execute_batch(
        [EnqueueJob(customer_id="paged") for _ in range(120)], utc_now())
    ids = {str(r.job_id) for r in made if not isinstance(r, Exception)}
    with api.signed_in("staff") as client:
        wait_for(lambda: 'data-testid="jobs-total">120<' in
                 client.get("/ui/jobs?customer_id=paged").text)
        found: list[str] = []
        url: str | None = "/ui/jobs?customer_id=paged"
        while url:
            text = client.get(url).text
            found += [line.split('"')[0] for line in text.split('data-testid="job-link">')[1:]]
            found = [f.split("<")[0] for f in found]
            nxt = text.split('data-testid="next-page"')[0].rsplit('href="', 1)
            url = html.unescape(nxt[1].split('"')[0]) if 'data-testid="next-page"' in text else None
        assert len(found) == 120
        assert set(found) == ids
        assert found == sorted(found)


def test_bulk_retry_of_all_matching_after_a_confirmation(api: ConsoleApi) -> None:
    jobs = [dead_letter(api, error="smtp timeout") for _ in range(3)]
    for job_id in jobs:
        seen(api, job_id, "dead_lettered")
    with api.signed_in("admin") as client:
        confirm = client.get("/ui/jobs/confirm", params={"do": "retry:all",
                                                         "error_contains": "smtp"})
        assert 'data-testid="confirm-count">3<' in confirm.text
        token = csrf_of(confirm.text)
        done = client.post("/ui/jobs/bulk", data={"csrf": token, "do": "retry:all",
                                                   "error_contains": "smtp", "reason": "r"})
        assert done.status_code == 200
        assert "3 of 3" in done.text
    for job_id in jobs:
        assert type(api.container.ledger.history(job_id)[-1]).__name__ == "Redriven"


def test_the_overview_charts_count_each_minute(api: ConsoleApi) -> None:
    dead_letter(api)
    with api.signed_in("staff") as client:

        def counted() -> bool:
            data = client.get("/ui/overview/minutes.json").json()
            totals = {name: sum(v) for name, v in zip(data["names"], data["values"], strict=True)}
            return totals == {"enqueued": 1, "completed": 0, "failed": 1, "dead_lettered": 1,
                              "stale": 0} and len(data["minutes"]) == 180

        wait_for(counted)
        table = client.get("/ui/overview/minutes")
        assert table.status_code == 200
        assert 'data-testid="minutes-table"' in table.text
