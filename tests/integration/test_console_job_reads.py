"""The job page reads its job in one hop to a worker thread (its ``job_status`` row, its
stream, its alerts; ``bench.console`` at 1,000,000 jobs: under load each hop waits for a
CPU), and shows the same as before; while the view has not caught up, the job as the
ledger has it."""

from __future__ import annotations

from typing import Any

import anyio
import anyio.to_thread
import pytest

from adapters.http.console.job_live import job_and_context, job_now
from adapters.http.wiring import build_http
from adapters.service.bootstrap import utc_now
from ledger.commands import EnqueueJob
from projections.queries.job_status import status_of_job
from tests.integration.test_console_pages import dead_letter, seen
from tests.support.console import console_api
from tests.support.projection_env import Backend


def test_the_job_page_reads_the_job_in_one_hop(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    with console_api(backend) as api:
        job_id = dead_letter(api, error="boom in one hop")
        seen(api, job_id, "dead_lettered")
        hops: list[str] = []
        real = anyio.to_thread.run_sync

        async def counted(func: Any, *args: Any, **kwargs: Any) -> Any:
            hops.append(getattr(func, "__qualname__", repr(func)))
            return await real(func, *args, **kwargs)

        with api.signed_in("staff") as client:
            before = client.get(f"/ui/jobs/{job_id}").text
            monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
            page = client.get(f"/ui/jobs/{job_id}")
            monkeypatch.undo()
        assert page.status_code == 200
        assert page.text.count("boom in one hop") == before.count("boom in one hop") > 1
        assert 'data-testid="job-status">dead_lettered<' in page.text
        # past the viewer (its key; on the embedded default, whether any key exists), the
        # job's row, stream and alerts together
        viewer = ("KeyVerifier.keys_exist", "viewer_for")
        assert [hop for hop in hops if hop not in viewer] == ["ReadPool.use"], hops


def test_while_the_view_is_behind_the_page_shows_the_ledgers_job(backend: Backend) -> None:
    container = backend.ledger()  # no projection runner: job_status stays empty
    job_id = container.ledger.execute(
        EnqueueJob(customer_id="acme", queue="emails"), utc_now()).job_id
    parts = build_http(container)
    try:
        current, context = anyio.run(job_and_context, parts.jobs, job_id)
        assert current == status_of_job(container.ledger.get_job(job_id))
        assert context == anyio.run(job_now, parts.jobs, current)
    finally:
        parts.views.close()


