"""The console's Views and Audit pages as the CLI's commands: a rebuild started from the
Views page takes the checkpoint ``ledger projections rebuild`` takes, and after an
archive it starts from the archive's checkpoint as the CLI's does (ADR 90, ADR 110); a
queue-level audit violation links to the queue, not to a job page."""

from __future__ import annotations

import re

from adapters.service.archive_replay import archive_horizon
from adapters.service.backend import backend_for
from adapters.service.bootstrap import utc_now
from ledger.commands import EnqueueJob, PauseQueue
from ledger.job import Job
from projections.job_status import JOB_STATUS
from projections.registry import VIEWS
from projections.runner import catch_up_unfed
from projections.store import LIVE
from tests.integration.test_archive import archive, seeded
from tests.integration.test_console_pages import dead_letter, seen
from tests.support.console import ConsoleApi, console_api, csrf_of
from tests.support.http import wait_for
from tests.support.projection_env import Backend

DONE = re.compile(r"rebuilt from (\d+) events; swapped in at position (\d+) .*checkpoint at (\d+)")


def rebuilt_from_the_page(api: ConsoleApi, view: str) -> re.Match[str]:
    """POST the view's rebuild as an admin; the task's result once done."""
    with api.signed_in("admin") as client:
        token = csrf_of(client.get("/ui/views").text)
        assert client.post(f"/ui/views/{view}/rebuild", data={"csrf": token}
                           ).status_code == 303
        found: list[re.Match[str]] = []

        def done() -> bool:
            page = client.get("/ui/views").text
            assert "failed" not in page.split(f'data-testid="task-{view}"')[1][:400], page
            match = DONE.search(page)
            found.extend([match] if match else [])
            return match is not None

        wait_for(done, 60)
    return found[0]


def test_a_rebuild_from_the_page_takes_a_checkpoint_as_the_cli_does(backend: Backend) -> None:
    with console_api(backend) as api:
        job_id = dead_letter(api)
        seen(api, job_id, "dead_lettered")
        checkpoints = api.container.backend.checkpoints()
        try:
            before = checkpoints.list("job_status")
            done = rebuilt_from_the_page(api, "job_status")
            after = checkpoints.list("job_status")
        finally:
            checkpoints.close()
        position = int(done.group(2))
        assert int(done.group(3)) >= position > 0
        assert len(after) == len(before) + 1
        assert after[0].position == int(done.group(3))  # newest first


def test_a_rebuild_from_the_page_after_an_archive_starts_at_its_checkpoint(
    backend: Backend,
) -> None:
    workload = seeded(backend)
    store = backend.store()
    rows_before = sorted(map(str, store.rows(JOB_STATUS, LIVE)))
    archive(backend, workload)
    horizon = archive_horizon(backend_for(backend.settings))
    assert horizon > 1
    with console_api(backend) as api:
        done = rebuilt_from_the_page(api, "job_status")
    assert int(done.group(2)) == store.head()
    catch_up_unfed(store, [VIEWS["job_status"]])
    # the archived jobs' rows are there: the fold started from the checkpoint after the
    # archive's horizon (the hot log alone has none of their events)
    assert sorted(map(str, store.rows(JOB_STATUS, LIVE))) == rows_before


def test_a_queue_level_violation_links_to_the_queue_not_a_job(backend: Backend) -> None:
    with console_api(backend) as api:
        ledger = api.container.ledger
        job_id = ledger.execute(EnqueueJob(customer_id="acme", queue="emails"),
                                utc_now()).job_id
        ledger.control_queue(PauseQueue(queue="emails", actor="cli:ops"), utc_now())
        job = ledger.get_job(job_id)  # a claim written around the paused queue
        job.trigger_event(Job.Claimed, timestamp=utc_now(), attempt=1, worker_id="rogue",
                          worker_time=None)
        ledger.save(job)
        with api.signed_in("staff") as client:
            token = csrf_of(client.get("/ui/audit").text)
            page = client.post("/ui/audit", data={"csrf": token}).text
            wait_for(lambda: 'data-testid="queue-emails"' in client.get("/ui/queues").text)
            queues = client.get("/ui/queues").text
    assert "claimed_while_paused" in page
    row = page.split("claimed_while_paused")[0].rsplit("<tr>", 1)[1]
    assert '<a href="/ui/queues#queue-emails" data-testid="violation-queue">queue emails</a>' in row
    assert 'data-testid="violation-job"' not in row  # not a job's violation
    assert f'href="/ui/jobs/{job_id}" data-testid="violation-claim"' in row
    assert 'id="queue-emails"' in queues
