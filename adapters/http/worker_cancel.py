"""``POST /jobs/{id}/cancelled``: a worker stopped the handler of a cancelled job.

An operator's cancel of a running job records ``CancelRequested``; the worker learns it
from its heartbeat's answer (``cancel_requested``), cancels the handler and says so here,
which ends the job ``cancelled`` (ADR 100). A report of an attempt that is no longer
current is 409, recorded as a refusal, as for ``complete`` and ``fail``.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Request, post
from litestar.di import NamedDependency
from litestar.params import FromPath

from adapters.http.access import principal_of
from adapters.http.bodies import AttemptState, CancelledRequest, read_body
from adapters.http.jobs import WORKER
from adapters.http.services import JobReads, Writer
from ledger.commands import ReportCancelled


@post(
    "/jobs/{job_id:uuid}/cancelled", status_code=200,
    opt={"access": WORKER, "body": CancelledRequest},
    summary="Report the handler of a cancelled job stopped", tags=["workers"],
)
async def cancelled(
    request: Request[Any, Any, Any],
    job_id: FromPath[UUID],
    writer: NamedDependency[Writer],
    jobs: NamedDependency[JobReads],
) -> AttemptState:
    """Record that the attempt stopped on its cancel request; the job is ``cancelled``.
    409 when the job was not asked to stop or the attempt is no longer current."""
    body = await read_body(request, CancelledRequest)
    await jobs.check_job_access(principal_of(request), job_id)
    outcome = await writer.execute(ReportCancelled(
        job_id=job_id, attempt=body.attempt, worker_id=body.worker_id,
        worker_time=body.worker_time,
    ))
    return AttemptState(job_id=outcome.job_id, attempt=outcome.attempt, status=outcome.status)


ROUTES = [cancelled]
