"""``POST /heartbeats``: one worker's heartbeats for many jobs, each answered on its own.

All of a request's heartbeats go to the batch writer together, so they share one
transaction with each other and with whatever other requests are in flight.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, post
from litestar.di import NamedDependency

from adapters.http.access import principal_of
from adapters.http.bodies import (
    HeartbeatBatchRequest,
    HeartbeatBatchResult,
    HeartbeatResult,
    read_body,
)
from adapters.http.jobs import WORKER
from adapters.http.problems import status_of
from adapters.http.services import JobWrites
from adapters.service.metrics import HEARTBEATS
from ledger.application import Result
from ledger.commands import RecordHeartbeat
from ledger.errors import AttemptSuperseded, JobNotFound, LedgerError


@post(
    "/heartbeats", status_code=200, opt={"access": WORKER, "body": HeartbeatBatchRequest},
    summary="Record heartbeats of several jobs", tags=["workers"],
)
async def heartbeats(
    request: Request[Any, Any, Any],
    job_writes: NamedDependency[JobWrites],
) -> HeartbeatBatchResult:
    """Each job gets its own result: ``recorded`` (with ``cancel_requested`` when an
    operator cancelled the job: stop its handler), ``superseded`` (that attempt is no
    longer current; the refusal is recorded), ``not_found`` or ``rejected``."""
    body = await read_body(request, HeartbeatBatchRequest)
    principal = principal_of(request)
    allowed = []
    hidden: set[int] = set()
    for index, job in enumerate(body.jobs):
        if principal.customer_id is not None:
            customer = await job_writes.jobs.customer_of(job.job_id)
            if customer is None or not principal.sees_customer(customer):
                hidden.add(index)
                continue
        allowed.append(RecordHeartbeat(
            job_id=job.job_id, attempt=job.attempt, worker_id=body.worker_id,
            worker_time=body.worker_time,
        ))
    outcomes = iter(await job_writes.writer.execute_many(allowed))
    results = []
    for index, job in enumerate(body.jobs):
        outcome: Result = JobNotFound(job.job_id) if index in hidden else next(outcomes)
        results.append(_result(job.job_id, job.attempt, outcome))
    recorded = sum(1 for r in results if r.result == "recorded")
    HEARTBEATS.labels("recorded").inc(recorded)
    superseded = sum(1 for r in results if r.result == "superseded")
    HEARTBEATS.labels("refused").inc(superseded)
    HEARTBEATS.labels("rejected").inc(len(results) - recorded - superseded)
    return HeartbeatBatchResult(
        worker_id=body.worker_id, recorded=recorded, refused=len(results) - recorded,
        results=results,
    )


def _result(job_id: Any, attempt: int, outcome: Result) -> HeartbeatResult:
    if not isinstance(outcome, LedgerError):
        return HeartbeatResult(
            job_id=job_id, attempt=attempt, result="recorded", status=200,
            job_status=outcome.status, cancel_requested=outcome.cancel_requested,
        )
    if isinstance(outcome, AttemptSuperseded):
        kind = "superseded"
    elif isinstance(outcome, JobNotFound):
        kind = "not_found"
    else:
        kind = "rejected"
    return HeartbeatResult(
        job_id=job_id, attempt=attempt, result=kind, status=status_of(outcome),
        detail=str(outcome),
    )


ROUTES = [heartbeats]
