"""Archive segments on SQLite and PostgreSQL (ADR 110): ended jobs' events move into a
verified, hash-chained segment and out of the hot log in one transaction; everything
still reads the same; archived jobs are read-only; a killed archive loses nothing."""

from __future__ import annotations

import os
import subprocess
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest

from adapters.archive import segment
from adapters.service.archive import run_archive
from adapters.service.archive_reader import segment_store
from adapters.service.backend import backend_for
from ledger.commands import CancelJob, CompleteJob, EnqueueJob
from ledger.errors import JobArchived
from projections.registry import VIEWS
from projections.runner import Runner
from projections.store import LIVE
from tests.support.projection_env import Backend, Workload

DAY = timedelta(days=1)


def catch_up(backend: Backend) -> None:
    runner = Runner(backend.store(), list(VIEWS.values()))
    runner.acquire()
    runner.catch_up()
    runner.release()


def seeded(backend: Backend) -> Workload:
    """A workload's jobs, a keyed job completed and a pending one, the views caught up."""
    container = backend.ledger()
    workload = Workload(container)
    workload.run(40)
    ledger = container.ledger
    keyed = ledger.execute(
        EnqueueJob(customer_id="acme", idempotency_key="invoice-7", payload={"n": 7}),
        workload.now,
    )
    ledger.execute(CancelJob(job_id=keyed.job_id, actor="test"), workload.now)
    ledger.execute(EnqueueJob(customer_id="acme"), workload.now)  # the log's head stays hot
    catch_up(backend)
    return workload


def state(backend: Backend, workload: Workload) -> dict[str, Any]:
    """Every job's history and state, and every view's rows."""
    ledger = workload.container.ledger
    ledger.forget()
    ids = list(workload.jobs) + [j for j in _all_job_ids(backend) if j not in workload.jobs]
    store = backend.store()
    return {
        "histories": {j: [(type(e).__name__, e.originator_version, e.timestamp)
                          for e in ledger.history(j)] for j in ids},
        "status": {j: str(ledger.get_job(j).status) for j in ids},
        "views": {t.name: list(store.rows(t, LIVE)) for v in VIEWS.values() for t in v.tables},
    }


def _all_job_ids(backend: Backend) -> list[UUID]:
    store = backend.store()
    return [UUID(str(row[0])) for row in store.rows(VIEWS["job_status"].tables[0], LIVE)]


def hot_events(backend: Backend) -> int:
    tables = backend_for(backend.settings).archive()
    try:
        return tables.hot_stats()[0]
    finally:
        tables.close()


def archive(backend: Backend, workload: Workload, **options: Any) -> Any:
    store = segment_store(backend.settings)
    try:
        return run_archive(backend_for(backend.settings), store, DAY, workload.now + 2 * DAY,
                           **options)
    finally:
        store.close()


def test_archive_moves_ended_jobs_and_everything_reads_the_same(backend: Backend) -> None:
    workload = seeded(backend)
    before, hot_before = state(backend, workload), hot_events(backend)
    dry = archive(backend, workload, dry_run=True)
    assert dry.jobs > 0
    assert dry.segments == []
    assert hot_events(backend) == hot_before

    report = archive(backend, workload, batch_jobs=7)
    assert report.jobs == dry.jobs
    assert len(report.segments) > 1
    assert hot_events(backend) == hot_before - report.events
    assert state(backend, workload) == before  # histories, states, views
    # the chain: each segment names the previous one's SHA-256 and verifies deeply
    store = segment_store(backend.settings)
    previous = ""
    for record in report.segments:
        index = segment.verify(store.get(record.name), record.sha256, deep=True)
        assert (record.previous_sha256, index.previous_sha256) == (previous, previous)
        previous = record.sha256
    store.close()
    assert archive(backend, workload).jobs == 0  # nothing left to archive


def test_an_archived_job_is_read_only_and_its_key_is_remembered(backend: Backend) -> None:
    workload = seeded(backend)
    archive(backend, workload)
    ledger = workload.container.ledger
    ledger.forget()
    again = ledger.execute(
        EnqueueJob(customer_id="acme", idempotency_key="invoice-7", payload={"n": 7}),
        workload.now,
    )
    assert (again.created, again.status) == (False, "cancelled")
    with pytest.raises(JobArchived):
        ledger.execute(CompleteJob(job_id=again.job_id, attempt=1, worker_id="w"), workload.now)
    done = next(j for j, o in workload.jobs.items() if o.status == "completed")
    (result,) = ledger.execute_batch([CancelJob(job_id=done, actor="x")], workload.now)
    assert isinstance(result, JobArchived)
    assert hot_events(backend) == hot_events(backend)  # nothing was appended by the refusals


STEPS = ["written", "verified", "recorded"]


@pytest.mark.parametrize("step", STEPS)
def test_a_killed_archive_loses_nothing(backend: Backend, step: str) -> None:
    workload = seeded(backend)
    before, hot_before = state(backend, workload), hot_events(backend)
    env = {**os.environ, **backend.env, "LEDGER_ARCHIVE_FAULT": step}
    killed = subprocess.run(
        ["ledger", "archive", "--older-than", "1s"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert killed.returncode == -9, killed.stderr
    after = hot_events(backend)
    assert after == (hot_before if step != "recorded" else after)
    assert (after < hot_before) == (step == "recorded")
    assert state(backend, workload) == before
    del env["LEDGER_ARCHIVE_FAULT"]
    rerun = subprocess.run(
        ["ledger", "archive", "--older-than", "1s", "--json"],
        env=env, capture_output=True, text=True, timeout=120, check=True,
    )
    assert '"jobs"' in rerun.stdout
    assert state(backend, workload) == before
    assert hot_events(backend) < hot_before


def test_history_over_http_and_time_travel_read_archived_jobs(backend: Backend) -> None:
    import httpx

    from adapters.http.wiring import build_http
    from adapters.service.bootstrap import utc_now
    from ledger.access import Role, new_key
    from projections.asof import parse_moment
    from projections.job_asof import job_as_of, job_states
    from tests.support.http import serve_in_thread

    workload = seeded(backend)
    ledger = workload.container.ledger
    done = [j for j, o in workload.jobs.items() if o.status == "completed"][:5]
    store = backend.store()
    head = store.head()
    moments = [parse_moment(f"@{p}") for p in (head // 3, head // 2, head)]

    def travelled() -> list[Any]:
        return [
            [safely(lambda m=m, j=j: job_as_of(store, ledger, j, m).to_dict())
             for m in moments]
            + [job_states(ledger, j, after=1, limit=3).to_dict()]
            for j in done
        ]

    def safely(call: Any) -> Any:
        try:
            return call()
        except Exception as error:
            return type(error).__name__

    before = travelled()
    secret, record = new_key(Role.ADMIN, None, None, utc_now())
    keys = workload.container.backend.key_store()
    keys.add(record)
    with serve_in_thread(build_http(workload.container)) as api, httpx.Client(
        base_url=api.base_url, headers={"authorization": f"Bearer {secret}"}, timeout=10
    ) as http:
        histories = [http.get(f"/jobs/{j}/history").json() for j in done]
        assert all(h["job_id"] == str(j) for h, j in zip(histories, done, strict=True))
        archive(backend, workload)
        ledger.forget()
        assert [http.get(f"/jobs/{j}/history").json() for j in done] == histories
        refused = http.post(f"/jobs/{done[0]}/cancel", json={"reason": "x"})
        assert (refused.status_code, refused.json()["code"]) == (409, "job_archived")
    assert travelled() == before


def test_an_archive_waits_for_a_rebuild_or_another_archive(backend: Backend) -> None:
    from adapters.service.archive import ArchiveBusy
    from projections.rebuild import maintenance_lock

    workload = seeded(backend)
    hot = hot_events(backend)
    for lock in ("archive", maintenance_lock("queue_history")):
        holder = backend.store()
        assert holder.try_lock(lock)
        with pytest.raises(ArchiveBusy):
            archive(backend, workload)
        holder.unlock(lock)
    assert hot_events(backend) == hot
    assert archive(backend, workload).jobs > 0
