"""One job's page: its state (now, after any of its events, or as of a moment), attempts
as lanes, the timeline with heartbeats folded, stale evidence, alerts with the exact
Slack payload, operator actions, and the actions the viewer may take. It reads the
``job_status`` view and the job's own stream (never the whole log)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import anyio.to_thread
from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect

from adapters.http.console import job_live
from adapters.http.console.job_live import caught_up, job_and_context
from adapters.http.console.render import actor, actor_name, page, reader
from adapters.http.console.session import Console
from adapters.http.services import JobReads, Writer
from ledger.action import checked_reason
from ledger.commands import CancelJob, RedriveJob
from projections.asof import parse_moment
from projections.job_asof import job_as_of, job_at
from projections.queries.job_status import JobStatus, status_of_job

MAX_VERSION = 2**31 - 1
"""The largest event version ``?at=`` asks for (beyond, the drivers overflow)."""


async def _state(
    jobs: JobReads, job_id: UUID, at: int | None, as_of: str | None
) -> tuple[JobStatus | None, str | None]:
    """The job after its event ``at``, or as of a moment (time or ``@position``), else
    ``None`` (the job now, read once by the page)."""
    if at is not None:
        version = min(max(at, 1), MAX_VERSION)  # a huge ?at= is the job now, not a 500
        job = await anyio.to_thread.run_sync(job_at, jobs.ledger, job_id, version)
        return status_of_job(job), f"after its event {job.version}"
    if as_of:
        moment = parse_moment(as_of)
        found = await jobs.views.read(lambda s: job_as_of(s, jobs.ledger, job_id, moment))
        return found.job, f"as of {found.as_of} (log position {found.position})"
    return None, None


@get("/jobs/{job_id:uuid}", include_in_schema=False)
async def job_page(  # noqa: PLR0917 - Litestar passes them by name
    request: Request[Any, Any, Any], job_id: FromPath[UUID],
    console: NamedDependency[Console], jobs: NamedDependency[JobReads],
    at: FromQuery[int | None] = None, as_of: FromQuery[str | None] = None,
    version: FromQuery[int | None] = None,
) -> Response[str]:
    """The job; ``version`` (after an action) says "updating…" while the view is behind it.
    The page showing the job now is live (:mod:`~adapters.http.console.job_live`)."""
    viewer = await reader(request, console)
    state, shown_as = await _state(jobs, job_id, at, as_of[:64] if as_of else None)
    current, context = await job_and_context(jobs, job_id)
    return page(
        request, viewer, "job.html", job=state or current, shown_as=shown_as, live=shown_as is None,
        updating=version is not None and current.version < version, oob=False,
        acts_changed=False, **context,
    )


async def _control(  # noqa: PLR0917 - the two routes' parameters
    request: Request[Any, Any, Any], console: Console, writer: Writer, jobs: JobReads,
    job_id: UUID, kind: str,
) -> Response[Any]:
    viewer, form = await actor(request, console)
    reason = checked_reason(str(form.get("reason") or "") or None)
    command: CancelJob | RedriveJob
    if kind == "cancel":
        command = CancelJob(job_id=job_id, actor=actor_name(viewer), reason=reason)
    else:
        command = RedriveJob(job_id=job_id, actor=actor_name(viewer), reason=reason)
    done = await writer.execute(command)
    await caught_up(jobs, job_id, done.version)  # so the next page shows the action done
    return Redirect(f"/ui/jobs/{job_id}?version={done.version}", status_code=303)


@post("/jobs/{job_id:uuid}/cancel", include_in_schema=False, status_code=303)
async def cancel(
    request: Request[Any, Any, Any], job_id: FromPath[UUID],
    console: NamedDependency[Console], writer: NamedDependency[Writer],
    jobs: NamedDependency[JobReads],
) -> Response[Any]:
    return await _control(request, console, writer, jobs, job_id, "cancel")


@post("/jobs/{job_id:uuid}/retry", include_in_schema=False, status_code=303)
async def retry(
    request: Request[Any, Any, Any], job_id: FromPath[UUID],
    console: NamedDependency[Console], writer: NamedDependency[Writer],
    jobs: NamedDependency[JobReads],
) -> Response[Any]:
    return await _control(request, console, writer, jobs, job_id, "retry")


ROUTES = [job_page, cancel, retry, job_live.job_live]
