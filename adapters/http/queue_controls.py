"""Queues over HTTP (ADR 100): ``GET /queues`` and ``POST /queues/{name}/pause``,
``/resume`` and ``/limit`` (staff or admin), each control an event with its actor."""

from __future__ import annotations

from typing import Annotated, Any

import anyio.to_thread
from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.params import PathParameter

from adapters.http.access import principal_of
from adapters.http.actions import OPERATOR, operator_actor
from adapters.http.bodies import read_body
from adapters.http.control_bodies import LimitRequest, ReasonRequest
from adapters.http.services import JobReads
from adapters.service.bootstrap import utc_now
from adapters.service.queue_controls import QueueState, queue_states
from adapters.tracing import observe_queue
from ledger.commands import PauseQueue, QueueOutcome, ResumeQueue, SetQueueLimit

QueuePath = Annotated[str, PathParameter(min_length=1, max_length=80)]


@get("/queues", opt={"access": OPERATOR}, summary="Queues and their controls",
     tags=["operator"])
async def list_queues(jobs: NamedDependency[JobReads]) -> list[QueueState]:
    """Every queue with jobs or controls: paused (by whom, why, since), its cap, the jobs
    holding its slots, pending and in progress."""
    return await anyio.to_thread.run_sync(queue_states, jobs.ledger, jobs.views.use)


async def _control(
    jobs: JobReads, command: PauseQueue | ResumeQueue | SetQueueLimit
) -> QueueOutcome:
    outcome = await anyio.to_thread.run_sync(jobs.ledger.control_queue, command, utc_now())
    observe_queue(command, outcome)
    return outcome


async def _reasoned(
    request: Request[Any, Any, Any], jobs: JobReads,
    command: type[PauseQueue] | type[ResumeQueue], queue: str,
) -> QueueOutcome:
    """A pause or resume with the body's reason, acted by the caller."""
    body = await read_body(request, ReasonRequest)
    actor = operator_actor(principal_of(request))
    return await _control(jobs, command(queue=queue, actor=actor, reason=body.reason))


@post("/queues/{queue:str}/pause", status_code=200,
      opt={"access": OPERATOR, "body": ReasonRequest}, summary="Pause a queue",
      tags=["operator"])
async def pause_queue(
    request: Request[Any, Any, Any], queue: QueuePath, jobs: NamedDependency[JobReads]
) -> QueueOutcome:
    """Hold the queue's sends and starts until it is resumed (again: ``changed`` false)."""
    return await _reasoned(request, jobs, PauseQueue, queue)


@post("/queues/{queue:str}/resume", status_code=200,
      opt={"access": OPERATOR, "body": ReasonRequest}, summary="Resume a queue",
      tags=["operator"])
async def resume_queue(
    request: Request[Any, Any, Any], queue: QueuePath, jobs: NamedDependency[JobReads]
) -> QueueOutcome:
    """Send and start the queue's jobs again."""
    return await _reasoned(request, jobs, ResumeQueue, queue)


@post("/queues/{queue:str}/limit", status_code=200,
      opt={"access": OPERATOR, "body": LimitRequest},
      summary="Cap a queue's running jobs across all workers", tags=["operator"])
async def limit_queue(
    request: Request[Any, Any, Any], queue: QueuePath, jobs: NamedDependency[JobReads]
) -> QueueOutcome:
    """At most ``max_running`` of the queue's jobs in progress at once (``null``: no cap)."""
    body = await read_body(request, LimitRequest)
    actor = operator_actor(principal_of(request))
    return await _control(jobs, SetQueueLimit(
        queue=queue, actor=actor, reason=body.reason, max_running=body.max_running))


ROUTES = [list_queues, pause_queue, resume_queue, limit_queue]
