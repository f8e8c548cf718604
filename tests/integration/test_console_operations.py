"""The console's operator pages against a real server: dead letters grouped and redriven
by group, queues paused, resumed and capped, views verified and rebuilt with progress,
the audit run; staff may read each page and act on none."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.job import Job
from tests.integration.test_console_pages import dead_letter, seen
from tests.support.console import ConsoleApi, console_api, csrf_of
from tests.support.http import wait_for
from tests.support.projection_env import make_backend


@pytest.fixture(params=["sqlite"])
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ConsoleApi]:
    backend = make_backend(request, tmp_path)
    try:
        with console_api(backend) as running:
            yield running
    finally:
        backend.close()


def test_dead_letters_are_grouped_and_a_group_is_redriven(api: ConsoleApi) -> None:
    smtp = [dead_letter(api, error="smtp timeout") for _ in range(2)]
    other = dead_letter(api, error="<b>bad</b> template")
    seen(api, other, "dead_lettered")
    for job_id in smtp:
        seen(api, job_id, "dead_lettered")
    with api.signed_in("admin") as client:
        text = client.get("/ui/dead-letters").text
        assert text.count('data-testid="dlq-group"') == 2
        assert "&lt;b&gt;bad&lt;/b&gt; template" in text
        first = text.split('data-testid="dlq-group"')[1]  # the largest group first
        assert "smtp timeout" in first
        link = first.split('data-testid="dlq-redrive-group"')[0].rsplit('href="', 1)[1]
        confirm = client.get(link.split('"')[0].replace("&amp;", "&"))
        assert 'data-testid="confirm-count">2<' in confirm.text
        form = {"csrf": csrf_of(confirm.text), "do": "retry:selected",
                "status": "dead_lettered", "job_id": [str(j) for j in smtp]}
        done = client.post("/ui/jobs/bulk", data=form)
        assert "2 of 2" in done.text
    for job_id in smtp:
        assert isinstance(api.container.ledger.history(job_id)[-1], Job.Redriven)
    assert not isinstance(api.container.ledger.history(other)[-1], Job.Redriven)


def test_pause_resume_and_cap_a_queue_from_the_page(api: ConsoleApi) -> None:
    dead_letter(api)  # a job on queue "emails"
    with api.signed_in("admin") as client:
        wait_for(lambda: 'data-testid="queue-emails"' in client.get("/ui/queues").text)
        token = csrf_of(client.get("/ui/queues").text)
        assert client.post("/ui/queues/emails/pause",
                           data={"csrf": token, "reason": "smtp down"}).status_code == 303
        assert api.container.ledger.get_queue("emails").paused  # type: ignore[union-attr]
        page = client.get("/ui/queues").text
        assert "smtp down" in page
        assert 'data-testid="resume-emails"' in page
        assert client.post("/ui/queues/emails/limit",
                           data={"csrf": token, "max_running": "3"}).status_code == 303
        assert client.post("/ui/queues/emails/limit",
                           data={"csrf": token, "max_running": "-1"}).status_code == 400
        assert client.post("/ui/queues/emails/resume", data={"csrf": token}).status_code == 303
    queue = api.container.ledger.get_queue("emails")
    assert queue is not None
    assert not queue.paused
    assert queue.max_running == 3
    assert queue.paused_by is None or queue.paused_by.startswith("ui:key:")


def test_staff_reads_every_operator_page_and_acts_on_none(api: ConsoleApi) -> None:
    dead_letter(api)
    head = api.head()
    with api.signed_in("staff") as client:
        for path in ("/ui/queues", "/ui/dead-letters", "/ui/views", "/ui/audit"):
            answer = client.get(path)
            assert answer.status_code == 200, path
            assert 'data-testid="rebuild-' not in answer.text
        token = csrf_of(client.get("/ui/queues").text)
        for path in ("/ui/queues/emails/pause", "/ui/views/job_status/rebuild"):
            assert client.post(path, data={"csrf": token}).status_code == 403
    assert api.head() == head
    assert api.container.ledger.get_queue("emails") is None


def test_verify_a_view_with_progress_and_run_the_audit(api: ConsoleApi) -> None:
    job_id = dead_letter(api)
    seen(api, job_id, "dead_lettered")
    with api.signed_in("admin") as client:
        token = csrf_of(client.get("/ui/views").text)
        assert client.post("/ui/views/job_status/verify", data={"csrf": token}
                           ).status_code == 303
        wait_for(lambda: "equal to a fresh rebuild" in client.get("/ui/views").text, 30)
        assert client.post("/ui/views/no_such_view/verify", data={"csrf": token}
                           ).status_code == 400
        report = client.post("/ui/audit", data={"csrf": token})
        assert report.status_code == 200
        assert 'data-testid="audit-result"' in report.text
        assert client.post("/ui/audit", data={}).status_code == 403
