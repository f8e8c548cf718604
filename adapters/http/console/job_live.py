"""The job page kept live (issue 15): what the page shows of the job now, the poll that
refreshes it, and the short wait after an action for the ``job_status`` view to reach it.

The page polls ``GET /ui/jobs/{id}/live?seen=<view version>&acts=<status:cancel>`` every
2 s with htmx. While the job's ``job_status`` row still has that version the answer is
204 (one key lookup, nothing swapped); otherwise it is the status line, the body (state,
lanes, alerts, operator actions, timeline) out of band, and the actions out of band only
when the status changed, so a reason being typed into a form is not wiped by heartbeats.
Without JavaScript the page is the same and a reload refreshes it.
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import anyio
from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery

from adapters.http.console.render import page, reader
from adapters.http.console.session import Console
from adapters.http.console.story import actions, story
from adapters.http.services import JobReads
from ledger.job import Job
from ledger.policies.alerts import DeadLetterNotice, slack_message
from projections.queries.dead_letter_alerts import DeadLetterAlert, DeadLetterAlertQueries
from projections.queries.job_status import JobStatus, JobStatusQueries
from projections.store import ViewStore
from projections.timeline import event_name

MAX_EVENTS_SHOWN = 5000
"""A job with more events shows its first ones (its heartbeats are folded anyway)."""
CATCH_UP_SECONDS = 2.0
"""How long an action's answer waits for the view to show it before it says "updating…"."""
CATCH_UP_STEP = 0.05


def acts_key(job: JobStatus) -> str:
    """What the actions offered depend on: the status and whether a cancel was asked."""
    return f"{job.status}:{job.cancel_requested}"


async def caught_up(jobs: JobReads, job_id: UUID, version: int,
                    seconds: float = CATCH_UP_SECONDS) -> JobStatus:
    """The job's ``job_status`` row once it reached ``version`` (the version an action
    returned), or as it is after ``seconds`` if the view is still behind."""
    with anyio.move_on_after(seconds):
        while (current := await jobs.job_status(job_id)).version < version:
            await anyio.sleep(CATCH_UP_STEP)
        return current
    return await jobs.job_status(job_id)


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


async def job_now(jobs: JobReads, current: JobStatus) -> dict[str, Any]:
    """The page's context for the job now: its stream's story, alerts and actions."""
    job_id = current.job_id
    events: list[Job.Event] = (await jobs.history(job_id))[:MAX_EVENTS_SHOWN]
    found = await jobs.views.read(lambda s: DeadLetterAlertQueries(s).for_job(job_id))
    return context_of(current, events, found)


async def job_and_context(jobs: JobReads, job_id: UUID) -> tuple[JobStatus, dict[str, Any]]:
    """The job now and :func:`job_now`'s context, read in one hop to a worker thread (its
    ``job_status`` row, its stream, its alerts): under load each hop waits for a CPU."""

    def read(store: ViewStore) -> tuple[JobStatus | None, list[Job.Event], list[DeadLetterAlert]]:
        row = JobStatusQueries(store).get(job_id)
        events = jobs.ledger.history(job_id)[:MAX_EVENTS_SHOWN]  # JobNotFound if none
        return row, events, DeadLetterAlertQueries(store).for_job(job_id)

    row, events, found = await jobs.views.read(read)
    current = row if row is not None else await jobs.job_status(job_id)  # view behind
    return current, context_of(current, events, found)


def context_of(current: JobStatus, events: list[Job.Event],
               found: list[DeadLetterAlert]) -> dict[str, Any]:
    return {
        "current": current, "story": story(events), "operator": actions(events),
        "stale": [e for e in events if event_name(e) == "StaleDetected"],
        "alerts": _alerts(current, found), "acts_key": acts_key(current),
        "may_cancel": current.status in ("pending", "scheduled", "in_progress"),
        "may_retry": current.status == "dead_lettered",
    }


@get("/jobs/{job_id:uuid}/live", include_in_schema=False)
async def job_live(  # noqa: PLR0917 - Litestar passes them by name
    request: Request[Any, Any, Any], job_id: FromPath[UUID],
    console: NamedDependency[Console], jobs: NamedDependency[JobReads],
    seen: FromQuery[int] = 0, acts: FromQuery[str] = "",
) -> Response[str]:
    """204 while the job is as the page shows it; else the parts that changed."""
    viewer = await reader(request, console)
    current = await jobs.job_status(job_id)
    if current.version == seen and acts_key(current) == acts:
        return Response("", status_code=204, headers={"Cache-Control": "no-store"})
    context = await job_now(jobs, current)
    return page(request, viewer, "job_live.html", job=current, shown_as=None, live=True,
                updating=False, oob=False, acts_changed=acts_key(current) != acts, **context)


ROUTES = [job_live]
