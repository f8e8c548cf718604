"""The views on SQLite and PostgreSQL: the same contract, checked against the in-memory fold."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest
from psycopg import sql

from adapters.service.backend import backend_for
from projections.model import View, ViewError
from projections.queries.health_metrics import HealthMetricsQueries
from projections.queries.job_status import JobStatusQueries
from projections.queries.lag import view_status
from projections.queries.queue_history import QueueHistoryQueries
from projections.queries.rate_limits import RateLimitQueries
from projections.rebuild import MaintenanceBusy, maintenance_lock, rebuild, verify
from projections.registry import VIEWS, get_view
from projections.runner import Runner
from projections.store import ViewStore
from tests.support.projection_env import (
    BACKENDS,
    Backend,
    Workload,
    reference_tables,
    store_tables,
)
from tests.support.projection_events import T0

ALL = list(VIEWS.values())


def fed(
    backend: Backend, steps: int = 30, page_size: int = 17, cache_rows: int = 50_000
) -> tuple[Workload, Runner]:
    workload = Workload(backend.ledger())
    workload.run(steps)
    runner = Runner(backend.store(), ALL, page_size=page_size, cache_rows=cache_rows)
    assert runner.acquire() == list(VIEWS)
    runner.catch_up()
    return workload, runner


def execute(store: ViewStore, statement: str, params: tuple[Any, ...] = ()) -> None:
    """Test-only writes behind the views' back (to corrupt or break things)."""
    if store.backend == "postgres":
        store.conn.execute(sql.SQL(statement), params)  # type: ignore[attr-defined]
    else:
        store.conn.execute(statement.replace("%s", "?"), params)  # type: ignore[attr-defined]


@pytest.mark.parametrize("cache_rows", [50_000, 3], ids=["cached", "reloading"])
def test_the_runner_feeds_every_view_to_the_head_in_pages(
    backend: Backend, cache_rows: int
) -> None:
    _, runner = fed(backend, cache_rows=cache_rows)  # a tiny cache reads rows back each page
    store = runner.store
    head = store.head()
    assert head > 500
    assert runner.lag() == dict.fromkeys(VIEWS, 0)
    for view in ALL:
        assert store.tracking(view.name).position == head
        assert store_tables(store, view) == reference_tables(store, view, head), view.name
    assert runner.catch_up() == 0  # nothing applied twice


def test_the_read_queries_answer_from_the_views(backend: Backend) -> None:
    workload, runner = fed(backend)
    store = runner.store
    ledger = workload.container.ledger
    jobs = JobStatusQueries(store)
    for job_id in list(workload.jobs)[:25]:
        job, row = ledger.get_job(job_id), jobs.get(job_id)
        assert row is not None
        assert (row.status, row.attempt, row.customer_id, row.last_heartbeat_at) == (
            job.status, job.attempt, job.customer_id, job.last_heartbeat_at
        )
    truth: dict[str, int] = {}
    for job_id in workload.jobs:
        status = str(ledger.get_job(job_id).status)
        truth[status] = truth.get(status, 0) + 1
    assert jobs.counts() == truth
    pending = jobs.find(status="pending", limit=1000)
    assert len(pending) == truth.get("pending", 0)
    assert [j.enqueued_at for j in pending] == sorted(j.enqueued_at for j in pending)
    acme = jobs.find(customer_id="acme", queue="emails", limit=1000)
    assert acme
    assert all((j.customer_id, j.queue) == ("acme", "emails") for j in acme)
    stale = jobs.in_progress_before(workload.now + timedelta(seconds=1))
    assert {j.job_id for j in stale} == {
        j for j in workload.jobs if ledger.get_job(j).status == "in_progress"
    }
    assert {j.job_id for j in jobs.dead_lettered()} == {
        j for j in workload.jobs if ledger.get_job(j).status == "dead_lettered"
    }

    some = next(iter(workload.jobs))
    history = QueueHistoryQueries(store).for_job(some)
    assert history[0].action == "enqueued"
    assert [h.position for h in history] == sorted(h.position for h in history)
    assert QueueHistoryQueries(store).recent(limit=5)[0].position > history[0].position

    health = HealthMetricsQueries(store).snapshot(
        workload.now, stale_threshold=timedelta(seconds=0.5), active_window=timedelta(minutes=1)
    )
    assert health.jobs_pending == truth.get("pending", 0)
    assert health.jobs_in_progress == truth.get("in_progress", 0)
    old = jobs.in_progress_before(workload.now - timedelta(seconds=0.5))
    assert health.stale_count == len(old)
    assert health.jobs_completed_today == sum(q.jobs_completed_today for q in health.queues)
    assert 1 <= health.active_workers <= 4

    totals = {t.subject: t for t in RateLimitQueries(store).totals(T0)}
    assert set(totals) <= {"acme", "globex", "initech"}
    assert sum(t.enqueued for t in totals.values()) == len(workload.jobs)
    assert sum(t.admitted + t.refused for t in totals.values()) > 0
    windows = RateLimitQueries(store).for_subject("acme", T0)
    assert sum(w.enqueued for w in windows) == totals["acme"].enqueued


def test_lag_is_the_head_minus_the_view_position(backend: Backend) -> None:
    workload = Workload(backend.ledger())
    workload.run(5)
    store = backend.store()
    runner = Runner(store, [get_view("job_status")], page_size=10)
    runner.acquire()
    runner.step()
    status = {s.view: s for s in view_status(store, ALL, runners=True)}
    head = store.head()
    assert status["job_status"].position == 10
    assert status["job_status"].lag == head - 10
    assert status["queue_history"].lag == head
    assert status["job_status"].owner == runner.owner
    assert status["job_status"].fed
    assert not status["queue_history"].fed
    runner.release()
    assert view_status(backend.store(), ALL, runners=True)[0].fed is False
    assert view_status(store, ALL)[0].fed is None


def test_rebuild_swaps_in_an_equal_view_and_the_live_runner_carries_on(backend: Backend) -> None:
    workload, runner = fed(backend)
    store = runner.store
    maintenance = backend.store()
    for view in ALL:
        result = rebuild(maintenance, view, page_size=50, reader=backend.store())
        assert result.generation == 1
        assert result.position == store.head()
    workload.run(10)
    runner.catch_up()  # its cache predates the swap: it must notice and reload
    head = store.head()
    for view in ALL:
        tracking = store.tracking(view.name)
        assert (tracking.position, tracking.generation) == (head, 1)
        assert store_tables(store, view) == reference_tables(store, view, head), view.name
        assert verify(backend.store(), maintenance, view).equal


def test_verify_finds_and_shows_the_first_differing_rows(backend: Backend) -> None:
    workload, runner = fed(backend)
    store = runner.store
    job_id = next(iter(workload.jobs))
    execute(store, "UPDATE job_status SET heartbeats = heartbeats + 100 WHERE job_id = %s",
            (str(job_id),))
    view = get_view("job_status")
    result = verify(backend.store(), backend.store(), view)
    assert not result.equal
    (table,) = [t for t in result.tables if not t.equal]  # the view's other tables agree
    assert table.table == "job_status"
    assert {t.table for t in result.tables} == {"job_status", "error_texts", "job_errors"}
    assert table.live_rows == table.rebuilt_rows == len(workload.jobs)
    assert table.live_checksum != table.rebuilt_checksum
    ((live, rebuilt),) = table.differences
    assert live is not None
    assert rebuilt is not None
    assert str(live[0]) == str(job_id)
    assert live[14] == rebuilt[14] + 100  # the heartbeats column
    rebuild(backend.store(), view)
    assert verify(backend.store(), backend.store(), view).equal


def test_a_broken_event_stops_each_view_there_and_it_is_never_skipped(backend: Backend) -> None:
    workload = Workload(backend.ledger())
    workload.run(5)
    store = backend.store()
    before = store.head()
    table = "jobledger_events" if backend.name == "postgres" else "stored_events"
    stranger = uuid4()  # an aggregate the ledger never loads, with a topic nobody knows
    originator = str(stranger) if backend.name == "postgres" else stranger.hex
    execute(store, f"INSERT INTO {table} (originator_id, originator_version, topic, state) "
                   "VALUES (%s, 1, 'ledger.job:Job.Teleported', %s)", (originator, b"{}"))
    broken = store.head()
    workload.run(3)
    runner = Runner(store, ALL, page_size=7)
    runner.acquire()
    runner.catch_up()
    assert set(runner.failures) == set(VIEWS)
    for view in ALL:
        message = runner.failures[view.name]
        assert f"view '{view.name}' stopped at event {broken}" in message
        assert "ledger.job:Job.Teleported" in message
        assert "unknown topic" in message
        tracking = store.tracking(view.name)
        assert tracking.position == before  # everything before it, nothing after
        assert tracking.error == message
    assert runner.step() == 0
    with pytest.raises(ViewError, match=f"stopped at event {broken}"):
        rebuild(backend.store(), get_view("job_status"), page_size=3, reader=backend.store())
    assert store.tracking("job_status").generation == 0  # nothing was swapped in
    readers = [t for t in threading.enumerate() if t.name == "rebuild-reader"]
    assert readers == []  # the page reader stopped with the rebuild
    again = Runner(backend.store(), ALL, page_size=1000)  # a restarted runner stops there too
    again.release()
    runner.release()
    again.acquire()
    again.catch_up()
    assert {v: backend.store().tracking(v).position for v in VIEWS} == dict.fromkeys(VIEWS, before)
    assert {s.view: s.error for s in view_status(store, ALL)} == {
        v: again.failures[v] for v in VIEWS
    }


def test_an_event_a_view_cannot_fold_stops_that_view_only(backend: Backend) -> None:
    workload = Workload(backend.ledger())
    workload.run(5)
    store = backend.store()
    before = store.head()
    stranger = uuid4()  # a claim of a job that was never enqueued: decodes, cannot be folded
    originator = str(stranger) if backend.name == "postgres" else stranger.hex
    state = (b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-03-02T09:00:00+00:00"},'
             b'"attempt":1,"worker_id":"w","worker_time":null}')
    table = "jobledger_events" if backend.name == "postgres" else "stored_events"
    execute(store, f"INSERT INTO {table} (originator_id, originator_version, topic, state) "
                   "VALUES (%s, 2, 'ledger.job:Job.Claimed', %s)", (originator, state))
    workload.run(3)
    runner = Runner(store, ALL, page_size=1000)  # the bad event is mid-page
    runner.acquire()
    runner.catch_up()
    stopped = {"job_status", "queue_history", "health_metrics"}
    assert set(runner.failures) == stopped
    for name in stopped:
        assert store.tracking(name).position == before  # the events before it are applied
        assert f"stopped at event {before + 1}" in runner.failures[name]
        assert str(stranger) in runner.failures[name]
    assert store.tracking("rate_limits").position == store.head()  # claims are not its business
    assert store.tracking("rate_limits").error is None


def test_one_runner_feeds_a_view_and_a_second_takes_over_when_it_stops(backend: Backend) -> None:
    workload = Workload(backend.ledger())
    workload.run(3)
    first, second = backend.store(), backend.store()
    a = Runner(first, ALL, owner="a")
    b = Runner(second, ALL, owner="b")
    assert a.acquire() == list(VIEWS)
    assert b.acquire() == []
    a.catch_up()
    workload.run(3)
    first.close()  # the first runner's session ends (as when its process dies)
    # The server releases a dead session's locks a moment after the client is gone.
    taken = b.acquire()
    deadline = time.monotonic() + 10
    while len(taken) < len(VIEWS) and time.monotonic() < deadline:
        time.sleep(0.05)
        taken += b.acquire()
    assert sorted(taken) == sorted(VIEWS)
    b.catch_up()
    head = second.head()
    for view in ALL:
        tracking = second.tracking(view.name)
        assert (tracking.position, tracking.owner) == (head, "b")
        assert store_tables(second, view) == reference_tables(second, view, head)


def test_rebuild_and_verify_of_one_view_are_one_at_a_time(backend: Backend) -> None:
    backend.ledger()
    holder, other = backend.store(), backend.store()
    view = get_view("rate_limits")
    assert holder.try_lock(maintenance_lock(view.name))
    with pytest.raises(MaintenanceBusy):
        rebuild(other, view)
    with pytest.raises(MaintenanceBusy):
        verify(backend.store(), other, view)


def test_rebuild_during_live_appends_ends_equal_to_the_live_view(backend: Backend) -> None:
    workload = Workload(backend.ledger(), seed=7)
    workload.run(20)
    live = Runner(backend.store(), ALL, page_size=25)
    live.acquire()
    stop_appending, stop_feeding = threading.Event(), threading.Event()

    def append() -> None:  # a steady stream, not as fast as the store takes it: the
        # rebuild must catch up with a live log, not win a race with an unbounded writer
        while not stop_appending.wait(0.005):
            workload.step(10)

    appender = threading.Thread(target=append)
    feeder = threading.Thread(target=live.run, args=(stop_feeding,),
                              kwargs={"poll_interval": 0.02})
    between_pages = Workload(backend.ledger(), seed=11)  # appends between rebuild pages too

    def append_between_pages(position: int, head: int) -> None:
        # Between the first pages of each rebuild only: appends in proportion to the pages
        # read grew the log by a constant factor per view, so the run's time doubled with
        # each view added (the ninth took it past its timeout on PostgreSQL).
        if between_pages.steps < 60 * (1 + ALL.index(current[0])):
            between_pages.step(5)

    current: list[View] = [ALL[0]]

    appender.start()
    feeder.start()
    store = backend.store()
    try:
        maintenance = backend.store()
        for view in ALL:
            current[0] = view
            started = maintenance.head()
            result = rebuild(maintenance, view, page_size=40, progress=append_between_pages)
            assert result.position > started  # it caught up with events appended meanwhile
        stop_appending.set()
        appender.join(30)
        deadline = time.monotonic() + 30
        while any(store.tracking(v).position < store.head() for v in VIEWS):
            assert time.monotonic() < deadline, "the live runner did not catch up"
            time.sleep(0.05)
    finally:
        stop_appending.set()
        stop_feeding.set()
        appender.join(30)
        feeder.join(30)
    assert not live.failures
    head = store.head()
    for view in ALL:
        assert store.tracking(view.name).generation == 1
        assert store_tables(store, view) == reference_tables(store, view, head), view.name
        assert verify(backend.store(), backend.store(), view).equal


@pytest.mark.postgres
@pytest.mark.parametrize("backend", [BACKENDS[1]], indirect=True)
def test_on_postgres_the_runner_wakes_on_notify_not_on_its_poll(backend: Backend) -> None:
    workload = Workload(backend.ledger())
    workload.run(1)
    runner = Runner(backend.store(), [get_view("job_status")])
    runner.acquire()
    stop = threading.Event()
    feeder = threading.Thread(target=runner.run, args=(stop,), kwargs={"poll_interval": 30})
    feeder.start()
    try:
        store = backend.store()
        deadline = time.monotonic() + 10
        while store.tracking("job_status").position < store.head():
            assert time.monotonic() < deadline
            time.sleep(0.02)
        workload.step(5)
        appended = time.monotonic()
        while store.tracking("job_status").position < store.head():
            assert time.monotonic() - appended < 5, "no wake-up before the 30 s poll"
            time.sleep(0.01)
    finally:
        stop.set()
        store.conn.execute("NOTIFY jobledger_events")  # type: ignore[attr-defined]
        feeder.join(40)
    assert time.monotonic() - appended < 5


def test_a_view_feeder_thread_keeps_the_views_current(backend: Backend) -> None:
    from adapters.service.views import ViewFeeder

    workload = Workload(backend.ledger())
    feeder = ViewFeeder(backend_for(backend.settings), poll_interval=0.02).start()
    try:
        workload.run(10)
        store = backend.store()
        deadline = time.monotonic() + 20
        while any(store.tracking(v).position < store.head() for v in VIEWS):
            assert time.monotonic() < deadline, "the feeder did not catch up"
            time.sleep(0.02)
    finally:
        feeder.stop()
    assert not feeder.running
    assert feeder.error is None
    assert feeder.failures == {}
