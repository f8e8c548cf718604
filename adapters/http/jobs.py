"""Routes of one job: enqueue, claim, heartbeat, complete, fail, its view, its history.

Each route names what it uses and Litestar injects it (:func:`adapters.http.app.create_app`):
the :class:`~adapters.http.services.Writer` for its command (through the batch writer, so
concurrent requests share a transaction), :class:`~adapters.http.services.JobReads` for the
job's reads and its customer check. The ledger's named errors become problem documents
(:mod:`adapters.http.problems`): 404 for an unknown job, 409 for a claim of a job that is
not pending and for a report from an attempt that is no longer current (recorded by the
ledger as a refusal).
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter

from adapters.http.access import principal_of, rule
from adapters.http.bodies import (
    UNCOMPRESSED,
    AttemptState,
    ClaimedAttempt,
    ClaimRequest,
    CompleteRequest,
    Enqueued,
    EnqueueRequest,
    FailRequest,
    HeartbeatRequest,
    History,
    HistoryEvent,
    read_body,
)
from adapters.http.problems import ApiError
from adapters.http.services import JobReads, JobWrites, Writer
from adapters.service.metrics import DEAD_LETTERS, HEARTBEATS, REQUEUES
from adapters.tracing import parse_traceparent
from ledger.access import Role
from ledger.commands import ClaimJob, CompleteJob, EnqueueJob, FailJob, Outcome, RecordHeartbeat
from ledger.errors import AttemptSuperseded, LedgerError
from ledger.status import Status
from projections.asof import parse_moment
from projections.job_asof import JobAsOf, job_as_of
from projections.queries.job_status import JobStatus
from projections.timeline import event_record

WORKER = rule(Role.WORKER, preset="worker")
SERVICE_WRITE = rule(Role.SERVICE, preset="service")
SERVICE_READ = rule(Role.SERVICE, Role.STAFF, preset="service")
AS_OF = "A time with a zone (2026-12-01T03:00Z) or a log position (@123)."


def _attempt(outcome: Outcome) -> AttemptState:
    return AttemptState(
        job_id=outcome.job_id, attempt=outcome.attempt, status=outcome.status,
        cancel_requested=outcome.cancel_requested,
    )


@post(
    "/jobs", status_code=201, opt={"access": SERVICE_WRITE, "body": EnqueueRequest},
    summary="Enqueue a job", tags=["jobs"],
)
async def enqueue(
    request: Request[Any, Any, Any], writer: NamedDependency[Writer]
) -> Response[Enqueued]:
    """Enqueue a job. The same ``idempotency_key`` of a customer returns the same job
    (``created`` false, header ``Idempotent-Replayed: true``)."""
    body = await read_body(request, EnqueueRequest)
    principal = principal_of(request)
    if not principal.sees_customer(body.customer_id):
        raise ApiError(
            403, f"this key may only enqueue jobs of customer {principal.customer_id!r}",
            code="forbidden",
        )
    outcome = await writer.execute(EnqueueJob(
        customer_id=body.customer_id, queue=body.queue, payload=body.payload,
        max_attempts=body.max_attempts, idempotency_key=body.idempotency_key,
        priority=body.priority, run_at=body.run_at, delay_seconds=body.delay_seconds,
        traceparent=parse_traceparent(request.headers.get("traceparent")),
    ))
    headers = {"Location": f"/jobs/{outcome.job_id}"}
    if not outcome.created:
        headers["Idempotent-Replayed"] = "true"
    return Response(
        Enqueued(job_id=outcome.job_id, status=outcome.status, created=outcome.created),
        status_code=201, headers=headers,
    )


@post(
    "/jobs/{job_id:uuid}/claim", status_code=200, opt={"access": WORKER, "body": ClaimRequest},
    summary="Claim a pending job (opens a new attempt)", tags=["workers"],
)
async def claim(
    request: Request[Any, Any, Any],
    job_id: FromPath[UUID],
    job_writes: NamedDependency[JobWrites],
) -> ClaimedAttempt:
    """Open the next attempt of a pending job for ``worker_id``; 409 unless it is pending
    (and due). The answer carries the job's payload, so the worker needs no other call."""
    body = await read_body(request, ClaimRequest)
    await job_writes.jobs.check_job_access(principal_of(request), job_id)
    outcome = await job_writes.writer.execute(
        ClaimJob(job_id=job_id, worker_id=body.worker_id, worker_time=body.worker_time)
    )
    payload = await job_writes.jobs.payload(job_id)
    return ClaimedAttempt(
        job_id=outcome.job_id, attempt=outcome.attempt, status=outcome.status, payload=payload,
        traceparent=outcome.traceparent,
    )


HEARTBEATS_RECORDED = HEARTBEATS.labels("recorded")
"""Looked up once: the heartbeat route is the hottest of all."""


@post(
    "/jobs/{job_id:uuid}/heartbeat", status_code=200,
    opt={"access": WORKER, "body": HeartbeatRequest, UNCOMPRESSED: True},
    summary="Record a heartbeat of the current attempt", tags=["workers"],
)
async def heartbeat(
    request: Request[Any, Any, Any],
    job_id: FromPath[UUID],
    job_writes: NamedDependency[JobWrites],
) -> AttemptState:
    """Say the attempt is alive; 409 if that attempt is no longer current (the refusal is
    recorded in the job's history); ``cancel_requested`` when an operator cancelled it."""
    body = await read_body(request, HeartbeatRequest)
    await job_writes.jobs.check_job_access(principal_of(request), job_id)
    try:
        outcome = await job_writes.writer.execute(RecordHeartbeat(
            job_id=job_id, attempt=body.attempt, worker_id=body.worker_id,
            worker_time=body.worker_time,
        ))
    except AttemptSuperseded:
        HEARTBEATS.labels("refused").inc()
        raise
    except LedgerError:
        HEARTBEATS.labels("rejected").inc()
        raise
    HEARTBEATS_RECORDED.inc()
    return _attempt(outcome)


@post(
    "/jobs/{job_id:uuid}/complete", status_code=200,
    opt={"access": WORKER, "body": CompleteRequest, UNCOMPRESSED: True},
    summary="Report the current attempt completed", tags=["workers"],
)
async def complete(
    request: Request[Any, Any, Any],
    job_id: FromPath[UUID],
    job_writes: NamedDependency[JobWrites],
) -> AttemptState:
    body = await read_body(request, CompleteRequest)
    await job_writes.jobs.check_job_access(principal_of(request), job_id)
    outcome = await job_writes.writer.execute(CompleteJob(
        job_id=job_id, attempt=body.attempt, worker_id=body.worker_id, result=body.result,
        worker_time=body.worker_time,
    ))
    return _attempt(outcome)


@post(
    "/jobs/{job_id:uuid}/fail", status_code=200,
    opt={"access": WORKER, "body": FailRequest, UNCOMPRESSED: True},
    summary="Report the current attempt failed", tags=["workers"],
)
async def fail(
    request: Request[Any, Any, Any],
    job_id: FromPath[UUID],
    job_writes: NamedDependency[JobWrites],
) -> AttemptState:
    """Record the failure; the job is retried (``pending``, after a backoff) or, out of
    attempts, ``dead_lettered``."""
    body = await read_body(request, FailRequest)
    await job_writes.jobs.check_job_access(principal_of(request), job_id)
    outcome = await job_writes.writer.execute(FailJob(
        job_id=job_id, attempt=body.attempt, worker_id=body.worker_id, error=body.error,
        worker_time=body.worker_time, error_normalised=body.error_normalised,
    ))
    if outcome.status == Status.DEAD_LETTERED:
        DEAD_LETTERS.inc()
    else:
        REQUEUES.labels("failed").inc()
    return _attempt(outcome)


@get(
    "/jobs/{job_id:uuid}", opt={"access": SERVICE_READ}, summary="A job's status",
    tags=["jobs"],
)
async def show(
    request: Request[Any, Any, Any],
    job_id: FromPath[UUID],
    jobs: NamedDependency[JobReads],
    as_of: Annotated[str | None, QueryParameter(max_length=64, description=AS_OF)] = None,
) -> JobStatus | JobAsOf:
    """The job_status view of one job; with ``as_of``, the job as it was then (its
    stream folded up to the log cut: the cut's position, the job's version, its state)."""
    await jobs.check_job_access(principal_of(request), job_id)
    if as_of is None:
        return await jobs.job_status(job_id)
    moment = parse_moment(as_of)
    return await jobs.views.read(lambda store: job_as_of(store, jobs.ledger, job_id, moment))


@get(
    "/jobs/{job_id:uuid}/history", opt={"access": SERVICE_READ},
    summary="A job's events, in order", tags=["jobs"],
)
async def history(
    request: Request[Any, Any, Any], job_id: FromPath[UUID], jobs: NamedDependency[JobReads]
) -> History:
    """Every event of the job from the ledger, oldest first."""
    await jobs.check_job_access(principal_of(request), job_id)
    events = await jobs.history(job_id)
    return History(
        job_id=job_id,
        events=[HistoryEvent(**event_record(event)) for event in events],
    )


ROUTES = [enqueue, claim, heartbeat, complete, fail, show, history]
