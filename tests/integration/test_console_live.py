"""The live job page (issue 15) over a real server on SQLite and PostgreSQL: the page
polls a fragment that is 204 while the job is unchanged and the changed parts otherwise
(the actions only when the status changed), an action's answer lands on a page that
already shows it, and an "as of" at the last representable time is the job now (it was a
500: ``when + SKEW`` overflowed)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest

from adapters.http.console import jobs as jobs_module
from adapters.http.console.dead_letters import grouped
from adapters.service.bootstrap import utc_now
from ledger.commands import ClaimJob, EnqueueJob, RecordHeartbeat
from projections.queries.dead_letter_alerts import DeadLetterAlertQueries
from tests.integration.test_console_pages import dead_letter, seen
from tests.support.console import ConsoleApi, console_api, csrf_of
from tests.support.http import wait_for
from tests.support.projection_env import BACKENDS, make_backend

POLL = re.compile(r'hx-get="/ui/jobs/[0-9a-f-]+/live\?seen=(\d+)&amp;acts=([a-z_]+:\d)"')


@pytest.fixture(params=BACKENDS)
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ConsoleApi]:
    backend = make_backend(request, tmp_path)
    try:
        with console_api(backend) as running:
            yield running
    finally:
        backend.close()


def poll_of(html: str) -> tuple[str, str]:
    found = POLL.search(html)
    assert found, "the page does not poll"
    return found.group(1), found.group(2)


def live(client: httpx.Client, job_id: UUID, seen_version: str, acts: str) -> httpx.Response:
    return client.get(f"/ui/jobs/{job_id}/live", params={"seen": seen_version, "acts": acts})


def running_job(api: ConsoleApi) -> UUID:
    ledger = api.container.ledger
    job_id = ledger.execute(EnqueueJob(customer_id="acme", queue="emails"), utc_now()).job_id
    ledger.execute(ClaimJob(job_id=job_id, worker_id="w-1"), utc_now())
    return job_id


def test_the_poll_is_204_until_the_job_changes_then_the_changed_parts(api: ConsoleApi) -> None:
    job_id = running_job(api)
    seen(api, job_id, "in_progress")
    with api.signed_in("staff") as client:
        version, acts = poll_of(client.get(f"/ui/jobs/{job_id}").text)
        assert acts == "in_progress:0"
        assert live(client, job_id, version, acts).status_code == 204
        api.container.ledger.execute(
            RecordHeartbeat(job_id=job_id, attempt=1, worker_id="w-1"),
            utc_now() + timedelta(seconds=1))
        wait_for(lambda: live(client, job_id, version, acts).status_code == 200)
        changed = live(client, job_id, version, acts).text
        assert poll_of(changed) == (str(int(version) + 1), acts)
        assert 'id="job-body" hx-swap-oob="true"' in changed
        assert "1 heartbeat" in changed or "Heartbeat" in changed
        assert 'id="job-actions"' not in changed  # same status: a typed reason stays
        moved = live(client, job_id, version, "pending:0").text
        assert 'id="job-actions" data-testid="job-actions" hx-swap-oob="true"' in moved


def test_an_action_lands_on_a_page_that_shows_it(api: ConsoleApi) -> None:
    job_id = dead_letter(api)
    seen(api, job_id, "dead_lettered")
    with api.signed_in("admin") as client:
        token = csrf_of(client.get(f"/ui/jobs/{job_id}").text)
        answer = client.post(f"/ui/jobs/{job_id}/retry", data={"csrf": token})
        assert answer.status_code == 303, answer.text
        target = answer.headers["location"]
        version = api.container.ledger.history(job_id)[-1].originator_version
        assert target == f"/ui/jobs/{job_id}?version={version}"
        after = client.get(target).text
        assert 'data-testid="job-status">pending<' in after
        assert 'data-testid="updating"' not in after
        ahead = client.get(f"/ui/jobs/{job_id}", params={"version": version + 5}).text
        assert 'data-testid="updating"' in ahead  # the view is behind what was asked


def test_a_page_of_the_past_does_not_poll_and_the_last_time_is_now(api: ConsoleApi) -> None:
    job_id = running_job(api)
    seen(api, job_id, "in_progress")
    with api.signed_in("staff") as client:
        past = client.get(f"/ui/jobs/{job_id}?at=1").text
        assert 'data-testid="job-head"' in past
        assert POLL.search(past) is None
        last = client.get(f"/ui/jobs/{job_id}", params={"as_of": "9999-12-31T23:59:59Z"})
        assert last.status_code == 200, last.text
        assert 'data-testid="shown-as">as of 9999-12-31' in last.text
        assert "in_progress" in last.text.split('data-testid="state-table"')[1][:2000]
        odd = client.get(f"/ui/jobs/{job_id}", params={"as_of": "9999-12-31T23:59:59-01:00"})
        assert odd.status_code == 400, odd.text
        assert "representable" in odd.text


class Counted:
    """A view store that counts the named queries asked of it."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.names: list[str] = []

    def query(self, name: str, params: Mapping[str, Any]) -> list[Any]:
        self.names.append(name)
        return list(self.store.query(name, params))


def test_the_dead_letters_page_reads_two_queries_not_one_per_job(api: ConsoleApi) -> None:
    made = [dead_letter(api, error=f"boom {n % 2}") for n in range(4)]
    for job_id in made:
        seen(api, job_id, "dead_lettered")
    store = api.container.backend.open_views()
    try:
        counted = Counted(store)
        groups, total = grouped(counted)  # type: ignore[arg-type]
        assert total == 4
        # the count, then the oldest dead letters with their alerts' status in one query
        assert counted.names == [
            "job_status.count_dead_lettered", "dead_letter_alerts.of_oldest_dead_letters",
        ]
        expected = {}
        for job_id in made:
            alerts = DeadLetterAlertQueries(store).for_job(job_id)
            expected[job_id] = alerts[-1].alert_status if alerts else "none"
        for group in groups:
            want: dict[str, int] = {}
            for job in group.jobs:
                want[expected[job.job_id]] = want.get(expected[job.job_id], 0) + 1
            assert group.alerts == want
        assert sorted(len(g.jobs) for g in groups) == [2, 2]
    finally:
        store.close()


def test_the_jobs_page_counts_matching_jobs_up_to_a_cap(
    api: ConsoleApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its time does not grow with the ledger: past the cap it says "More than"."""
    ledger = api.container.ledger
    made = [ledger.execute(EnqueueJob(customer_id="capped"), utc_now()).job_id
            for _ in range(5)]
    seen(api, made[-1], "pending")
    monkeypatch.setattr(jobs_module, "COUNT_CAP", 3)
    with api.signed_in("staff") as client:
        capped = client.get("/ui/jobs", params={"customer_id": "capped"}).text
        assert 'More than <span data-testid="jobs-total">3<' in capped
        assert capped.count('data-testid="job-row"') == 5
        few = client.get("/ui/jobs", params={"customer_id": "capped", "after": str(max(made))})
        assert few.status_code == 200
        exact = client.get("/ui/jobs", params={"customer_id": "nobody"}).text
        assert '<p><span data-testid="jobs-total">0<' in exact
