"""One job as of a moment (issue 16): the job as of its event N is its first N events
folded, on SQLite and PostgreSQL, through the position index and the snapshots."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast
from uuid import UUID

import pytest
from eventsourcing.application import project_aggregate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.service.backend import backend_for
from ledger.application import JobLedger
from ledger.commands import AnyCommand, ClaimJob, CompleteJob, EnqueueJob, FailJob, RecordHeartbeat
from ledger.errors import JobNotFound, LedgerError
from ledger.job import Job
from projections.asof import BeyondHead, parse_moment
from projections.job_asof import JobNotYetEnqueued, job_as_of, job_states
from projections.queries.job_status import status_of_job
from projections.store import ViewStore
from tests.support.ledgers import make_ledger, settings_for

stores = pytest.mark.parametrize(
    "store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
START = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


class Clock:
    """Strictly increasing recording times, one millisecond apart."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now


@pytest.fixture
def world(
    store: str, store_url: str | None, tmp_path: Path
) -> Iterator[tuple[JobLedger, ViewStore, Clock]]:
    ledger = make_ledger(store, tmp_path, store_url, snapshot_interval=3)
    views = backend_for(settings_for(store, tmp_path, store_url)).open_views()
    try:
        yield ledger, views, Clock()
    finally:
        views.close()
        ledger.close()


def act(ledger: JobLedger, clock: Clock, job_id: UUID, op: str) -> None:
    """One worker action on the job; refusals are part of the history too."""
    attempt = ledger.get_job(job_id).attempt
    command: AnyCommand
    if op == "claim":
        command = ClaimJob(job_id=job_id, worker_id="w")
    elif op == "heartbeat":
        command = RecordHeartbeat(job_id=job_id, attempt=attempt, worker_id="w")
    elif op == "fail":
        command = FailJob(job_id=job_id, attempt=attempt, worker_id="w", error="boom")
    else:
        command = CompleteJob(job_id=job_id, attempt=attempt, worker_id="w")
    with contextlib.suppress(LedgerError):
        ledger.execute(command, clock())


def folded(events: list[Job.Event]) -> Job:
    """The events folded from nothing, without snapshots or the log's positions."""
    return cast(Job, project_aggregate(None, events))


def positions_of(views: ViewStore, job_id: UUID) -> list[int]:
    """The job's events' positions in the log, in version order."""
    found, after = [], 0
    while page := views.read_events(after, 500):
        found += [row[0] for row in page if row[1] == str(job_id)]
        after = page[-1][0]
    return found


OPS = st.lists(st.sampled_from(["claim", "heartbeat", "heartbeat", "fail", "complete"]),
               max_size=25)


@stores
@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS, others=OPS, data=st.data())
def test_a_job_as_of_its_event_n_is_its_first_n_events_folded(
    world: tuple[JobLedger, ViewStore, Clock], ops: list[str], others: list[str],
    data: st.DataObject,
) -> None:
    ledger, views, clock = world
    job_id = ledger.execute(EnqueueJob(customer_id="c", max_attempts=3), clock()).job_id
    other = ledger.execute(EnqueueJob(customer_id="d", max_attempts=3), clock()).job_id
    for index in range(max(len(ops), len(others))):
        for target, script in ((job_id, ops), (other, others)):
            if index < len(script):
                act(ledger, clock, target, script[index])
    events = ledger.history(job_id)
    positions = positions_of(views, job_id)
    assert len(positions) == len(events)
    n = data.draw(st.integers(1, len(events)), label="n")
    expected = status_of_job(folded(events[:n]))
    # the cut at the event itself, and anywhere before the job's next event
    upper = positions[n] - 1 if n < len(events) else views.head()
    offset = data.draw(st.integers(0, 1000), label="offset")  # same bounds every example
    cut = positions[n - 1] + offset % (upper - positions[n - 1] + 1)
    by_position = job_as_of(views, ledger, job_id, parse_moment(f"@{cut}"))
    assert (by_position.version, by_position.position, by_position.job) == (n, cut, expected)
    # one command's events share its time (Failed + Requeued): a time cut takes them all
    at = events[n - 1].timestamp
    last = max(k for k in range(1, len(events) + 1) if events[k - 1].timestamp <= at)
    by_time = job_as_of(views, ledger, job_id, parse_moment(at.isoformat()))
    assert (by_time.version, by_time.job) == (last, status_of_job(folded(events[:last])))
    page = job_states(ledger, job_id, after=n - 1, limit=1)
    assert [s.job for s in page.states] == [expected]


@stores
def test_a_job_before_it_existed_beyond_the_head_and_never(
    world: tuple[JobLedger, ViewStore, Clock],
) -> None:
    ledger, views, clock = world
    ledger.execute(EnqueueJob(customer_id="c"), clock())
    job_id = ledger.execute(EnqueueJob(customer_id="c"), clock()).job_id
    with pytest.raises(JobNotYetEnqueued, match="not enqueued yet"):
        job_as_of(views, ledger, job_id, parse_moment("@1"))
    with pytest.raises(JobNotYetEnqueued):
        job_as_of(views, ledger, job_id, parse_moment("2020-01-01T00:00Z"))
    with pytest.raises(BeyondHead):
        job_as_of(views, ledger, job_id, parse_moment("@3"))
    with pytest.raises(JobNotFound):
        job_as_of(views, ledger, UUID(int=7), parse_moment("@2"))
    with pytest.raises(JobNotFound):
        job_states(ledger, UUID(int=7))


@stores
def test_states_page_through_a_long_job(world: tuple[JobLedger, ViewStore, Clock]) -> None:
    ledger, _, clock = world
    job_id = ledger.execute(EnqueueJob(customer_id="c"), clock()).job_id
    act(ledger, clock, job_id, "claim")
    for _ in range(20):
        act(ledger, clock, job_id, "heartbeat")
    events = ledger.history(job_id)
    seen, after = [], 0
    while True:
        page = job_states(ledger, job_id, after=after, limit=7)
        seen += page.states
        if page.next_after is None:
            break
        after = page.next_after
    assert [s.version for s in seen] == list(range(1, len(events) + 1))
    assert seen[-1].job.heartbeats == 20
    assert [s.event for s in seen[:2]] == ["Enqueued", "Claimed"]
    assert seen[-1].job == status_of_job(folded(events))
