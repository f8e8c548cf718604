"""An operator's control of one job over HTTP (ADR 100): ``POST /jobs/{id}/cancel`` and
``POST /jobs/{id}/retry`` (redrive a dead letter). A service key may control its own
customer's jobs (another customer's are 404, as if they did not exist); staff and admin
any. The actor recorded is the caller's key and role, with the body's ``reason``."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Request, post
from litestar.di import NamedDependency
from litestar.params import FromPath

from adapters.http.access import principal_of, rule
from adapters.http.actions import operator_actor
from adapters.http.bodies import read_body
from adapters.http.control_bodies import ReasonRequest
from adapters.http.services import JobReads, Writer
from ledger.access import Role
from ledger.commands import CancelJob, Outcome, RedriveJob

JOB_CONTROL = rule(Role.SERVICE, Role.STAFF, preset="service")


@post(
    "/jobs/{job_id:uuid}/cancel", status_code=200,
    opt={"access": JOB_CONTROL, "body": ReasonRequest}, summary="Cancel a job",
    tags=["operator"],
)
async def cancel(
    request: Request[Any, Any, Any],
    job_id: FromPath[UUID],
    writer: NamedDependency[Writer],
    jobs: NamedDependency[JobReads],
) -> Outcome:
    """A pending or scheduled job is cancelled at once; a running one is asked to stop
    (``cancel_requested``: its worker ends it). 409 for a finished job."""
    body = await read_body(request, ReasonRequest)
    principal = principal_of(request)
    await jobs.check_job_access(principal, job_id)
    return await writer.execute(
        CancelJob(job_id=job_id, actor=operator_actor(principal), reason=body.reason)
    )


@post(
    "/jobs/{job_id:uuid}/retry", status_code=200,
    opt={"access": JOB_CONTROL, "body": ReasonRequest},
    summary="Retry a dead-lettered job with a fresh attempt budget", tags=["operator"],
)
async def retry(
    request: Request[Any, Any, Any],
    job_id: FromPath[UUID],
    writer: NamedDependency[Writer],
    jobs: NamedDependency[JobReads],
) -> Outcome:
    """Redrive the dead-lettered job (it becomes pending); 409 unless it is dead-lettered."""
    body = await read_body(request, ReasonRequest)
    principal = principal_of(request)
    await jobs.check_job_access(principal, job_id)
    return await writer.execute(
        RedriveJob(job_id=job_id, actor=operator_actor(principal), reason=body.reason)
    )


ROUTES = [cancel, retry]
