"""One job's page: its state (now, after any of its events, or as of a moment), attempts
as lanes, the timeline with heartbeats folded, stale evidence, alerts with the exact
Slack payload, operator actions, and the actions the viewer may take. It reads the
``job_status`` view and the job's own stream (never the whole log)."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import anyio.to_thread
from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect

from adapters.http.console.render import actor, actor_name, page, reader
from adapters.http.console.session import Console
from adapters.http.console.story import actions, story
from adapters.http.services import JobReads, Writer
from ledger.action import checked_reason
from ledger.commands import CancelJob, RedriveJob
from ledger.job import Job
from ledger.policies.alerts import DeadLetterNotice, slack_message
from projections.asof import parse_moment
from projections.job_asof import job_as_of, job_at
from projections.queries.dead_letter_alerts import DeadLetterAlert, DeadLetterAlertQueries
from projections.queries.job_status import JobStatus, status_of_job
from projections.timeline import event_name

MAX_VERSION = 2**31 - 1
"""The largest event version ``?at=`` asks for (beyond, the drivers overflow)."""
MAX_EVENTS_SHOWN = 5000
"""A job with more events shows its first ones (its heartbeats are folded anyway)."""


def _alerts(job: JobStatus, alerts: list[DeadLetterAlert]) -> list[dict[str, Any]]:
    """Each dead letter's alert, with the Slack message it is (or would be) posted as."""
    out = []
    for alert in alerts:
        notice = DeadLetterNotice(
            job_id=alert.job_id, dead_letter_version=alert.dead_letter_version,
            customer_id=job.customer_id, attempts=alert.attempts_used,
            message_id=alert.message_id, last_error=alert.last_error,
            dead_lettered_at=alert.dead_lettered_at,
        )
        out.append({"alert": alert, "payload": json.dumps(
            slack_message([notice]), indent=2, ensure_ascii=False, default=str)})
    return out


async def _state(
    jobs: JobReads, job_id: UUID, at: int | None, as_of: str | None
) -> tuple[JobStatus, str | None]:
    """The job now, after its event ``at``, or as of a moment (time or ``@position``)."""
    if at is not None:
        version = min(max(at, 1), MAX_VERSION)  # a huge ?at= is the job now, not a 500
        job = await anyio.to_thread.run_sync(job_at, jobs.ledger, job_id, version)
        return status_of_job(job), f"after its event {job.version}"
    if as_of:
        moment = parse_moment(as_of)
        found = await jobs.views.read(lambda s: job_as_of(s, jobs.ledger, job_id, moment))
        return found.job, f"as of {found.as_of} (log position {found.position})"
    return await jobs.job_status(job_id), None


@get("/jobs/{job_id:uuid}", include_in_schema=False)
async def job_page(  # noqa: PLR0917 - Litestar passes them by name
    request: Request[Any, Any, Any], job_id: FromPath[UUID],
    console: NamedDependency[Console], jobs: NamedDependency[JobReads],
    at: FromQuery[int | None] = None, as_of: FromQuery[str | None] = None,
) -> Response[str]:
    viewer = await reader(request, console)
    state, shown_as = await _state(jobs, job_id, at, as_of[:64] if as_of else None)
    events: list[Job.Event] = (await jobs.history(job_id))[:MAX_EVENTS_SHOWN]
    current = await jobs.job_status(job_id)
    found_alerts = await jobs.views.read(lambda s: DeadLetterAlertQueries(s).for_job(job_id))
    stale = [e for e in events if event_name(e) == "StaleDetected"]
    return page(
        request, viewer, "job.html", job=state, current=current, shown_as=shown_as,
        story=story(events), operator=actions(events), stale=stale,
        alerts=_alerts(current, found_alerts),
        may_cancel=current.status in ("pending", "scheduled", "in_progress"),
        may_retry=current.status == "dead_lettered",
    )


async def _control(request: Request[Any, Any, Any], console: Console, writer: Writer,
                   job_id: UUID, kind: str) -> Response[Any]:
    viewer, form = await actor(request, console)
    reason = checked_reason(str(form.get("reason") or "") or None)
    command: CancelJob | RedriveJob
    if kind == "cancel":
        command = CancelJob(job_id=job_id, actor=actor_name(viewer), reason=reason)
    else:
        command = RedriveJob(job_id=job_id, actor=actor_name(viewer), reason=reason)
    await writer.execute(command)
    return Redirect(f"/ui/jobs/{job_id}", status_code=303)


@post("/jobs/{job_id:uuid}/cancel", include_in_schema=False, status_code=303)
async def cancel(
    request: Request[Any, Any, Any], job_id: FromPath[UUID],
    console: NamedDependency[Console], writer: NamedDependency[Writer],
) -> Response[Any]:
    return await _control(request, console, writer, job_id, "cancel")


@post("/jobs/{job_id:uuid}/retry", include_in_schema=False, status_code=303)
async def retry(
    request: Request[Any, Any, Any], job_id: FromPath[UUID],
    console: NamedDependency[Console], writer: NamedDependency[Writer],
) -> Response[Any]:
    return await _control(request, console, writer, job_id, "retry")


ROUTES = [job_page, cancel, retry]
