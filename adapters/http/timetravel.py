"""Routes of time travel and what-if (issue 16): a job's state after each of its events
(for the console's "job as of any event"), and the replays of the stale rule and of alert
grouping over the recorded history (staff). ``GET /jobs/{id}?as_of=`` is in
:mod:`adapters.http.jobs`. Everything here reads; nothing is appended."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import anyio.to_thread
from litestar import Request, get
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter

from adapters.http.access import principal_of, rule
from adapters.http.jobs import SERVICE_READ
from adapters.http.services import JobReads, ReadPool
from adapters.service.bootstrap import utc_now
from ledger.access import Role
from projections.alert_replay import AlertReplayReport
from projections.job_asof import MAX_STATES, JobStates, job_states
from projections.replays import parse_duration, replay_alerts, replay_range, replay_stale
from projections.stale_replay import StaleReplayReport

REPLAY = rule(Role.STAFF, preset="staff")

Duration = Annotated[str, QueryParameter(
    min_length=1, max_length=24, description="A duration: 300 (seconds), 300s, 5m, 1.5h, 7d.")]
Moment = Annotated[str, QueryParameter(
    min_length=1, max_length=40,
    description="A duration back from now (7d) or a time with a zone (2026-12-01T03:00Z).")]


@get(
    "/jobs/{job_id:uuid}/states", opt={"access": SERVICE_READ},
    summary="A job's state after each of its events, paged", tags=["jobs"],
)
async def states(
    request: Request[Any, Any, Any],
    job_id: FromPath[UUID],
    jobs: NamedDependency[JobReads],
    after: Annotated[int, QueryParameter(ge=0, le=2**62, description=(
        "Start after this version (0: from the enqueue)."))] = 0,
    limit: Annotated[int, QueryParameter(ge=1, le=MAX_STATES)] = 100,
) -> JobStates:
    """The job's state (the job_status shape) after each of its events ``after + 1`` to
    ``after + limit``; ``next_after`` continues the page (``null`` at the end). The job as
    of its event N is ``after=N-1&limit=1``."""
    await jobs.check_job_access(principal_of(request), job_id)
    return await anyio.to_thread.run_sync(
        lambda: job_states(jobs.ledger, job_id, after=after, limit=limit)
    )


@get(
    "/replay/stale", opt={"access": REPLAY},
    summary="What-if: the stale rule with another threshold over the recorded history",
    tags=["what-if"],
)
async def stale(
    *,
    views: NamedDependency[ReadPool],
    threshold: Duration,
    interval: Duration = "120",
    since: Moment = "7d",
    until: Annotated[str | None, QueryParameter(max_length=40)] = None,
) -> StaleReplayReport:
    """Attempts the setting would flag, false positives (flagged, then completed in the
    same attempt), recorded detections it would not make, and recovery times, beside what
    the log records. Read-only."""
    start, end = replay_range(since, until, utc_now())
    wait, every = parse_duration(threshold), parse_duration(interval)
    return await views.read(
        lambda store: replay_stale(store, threshold=wait, interval=every, start=start, until=end)
    )


@get(
    "/replay/alerts", opt={"access": REPLAY},
    summary="What-if: alert grouping with another wait over the recorded dead letters",
    tags=["what-if"],
)
async def alerts(
    *,
    views: NamedDependency[ReadPool],
    group_wait: Duration,
    threshold: Annotated[int, QueryParameter(ge=1, le=1_000_000)] = 1,
    tick: Duration = "1",
    since: Moment = "7d",
    until: Annotated[str | None, QueryParameter(max_length=40)] = None,
) -> AlertReplayReport:
    """How many posts the grouping would make and how late, beside the recorded ones."""
    start, end = replay_range(since, until, utc_now())
    wait, every = parse_duration(group_wait), parse_duration(tick)
    return await views.read(lambda store: replay_alerts(
        store, group_wait=wait, threshold=threshold, tick=every, start=start, until=end,
    ))


ROUTES = [states, stale, alerts]
