"""The dead letters page at size (issue 15): each group lists its first 20 jobs and counts
the rest (its redrive link still names them all), the total is counted up to a cap, and
the jobs and their alerts' status come from one query."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.http.console import dead_letters
from projections.queries.dead_letter_alerts import DeadLetterAlertQueries
from tests.integration.test_console_pages import dead_letter, seen
from tests.support.console import ConsoleApi, console_api
from tests.support.projection_env import BACKENDS, make_backend


@pytest.fixture(params=BACKENDS)
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ConsoleApi]:
    backend = make_backend(request, tmp_path)
    try:
        with console_api(backend) as running:
            yield running
    finally:
        backend.close()


def test_a_group_lists_20_jobs_and_its_link_names_all(
    api: ConsoleApi, monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = [dead_letter(api, error="smtp timeout") for _ in range(23)]
    other = dead_letter(api, error="bad template")
    seen(api, ids[-1], "dead_lettered")
    seen(api, other, "dead_lettered")
    with api.signed_in("admin") as client:
        page = client.get("/ui/dead-letters").text
        monkeypatch.setattr(dead_letters, "COUNT_CAP", 10)
        capped = client.get("/ui/dead-letters").text
    first = page.split('data-testid="dlq-group"')[1]
    assert "<h2>23 \u00d7 " in first
    assert first.count('data-testid="dlq-row"') == 20
    assert 'data-testid="dlq-more">and 3 more in this group' in first
    link = first.split('data-testid="dlq-redrive-group"')[0].rsplit('href="', 1)[1]
    assert all(str(job_id) in link for job_id in ids)
    assert 'data-testid="dead-letters-total">24<' in page
    assert 'More than <span data-testid="dead-letters-total">10<' in capped


def test_the_oldest_dead_letters_come_with_their_alert_status(api: ConsoleApi) -> None:
    first, second = dead_letter(api, error="a"), dead_letter(api, error="b")
    seen(api, second, "dead_lettered")
    store = api.container.backend.open_views()
    try:
        found = DeadLetterAlertQueries(store).of_oldest_dead_letters(10)
    finally:
        store.close()
    assert [job.job_id for job, _ in found] == [first, second]
    assert [job.last_error for job, _ in found] == ["a", "b"]
    assert {status for _, status in found} <= {"pending", "sent", "failed", "none"}
