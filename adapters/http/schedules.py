"""Cron schedules over HTTP (ADR 130): ``GET /schedules``, ``POST /schedules`` and
``POST /schedules/{name}/pause|resume|remove`` (staff or admin), each change an event
with its actor ``api:key:<id>:<role>`` and the body's ``reason``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

import anyio.to_thread
import msgspec
from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.params import PathParameter

from adapters.http.access import principal_of
from adapters.http.actions import OPERATOR, operator_actor
from adapters.http.bodies import Body, read_body
from adapters.http.control_bodies import ReasonRequest
from adapters.http.problems import ApiError
from adapters.http.services import JobReads
from adapters.service.bootstrap import utc_now
from ledger.commands import Reason
from ledger.policies.cron import MissedTicks
from ledger.schedule import Schedule, ScheduleExists, ScheduleNotFound, ScheduleSpec
from ledger.schedule_book import ScheduleBook
from projections.queries.schedules import ScheduleQueries, ScheduleRow

NamePath = Annotated[str, PathParameter(min_length=1, max_length=120)]


class ScheduleRequest(Body, frozen=True):
    """A new schedule: each tick of ``cron`` (five fields, in ``timezone``) enqueues one
    job on ``queue`` with ``payload``, exactly once; ``missed``: what to do about ticks
    missed while no scheduler ran (``run_once``: the latest of them; ``skip``)."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=120)]
    cron: Annotated[str, msgspec.Meta(max_length=200, examples=["*/5 * * * *"])]
    queue: Annotated[str, msgspec.Meta(min_length=1, max_length=80)] = "default"
    payload: Any = None
    timezone: Annotated[str, msgspec.Meta(max_length=64)] = "UTC"
    missed: MissedTicks = MissedTicks.RUN_ONCE
    customer_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] = "schedules"
    priority: Annotated[int, msgspec.Meta(ge=-100, le=100)] = 0
    max_attempts: Annotated[int, msgspec.Meta(ge=1, le=100)] = 3
    reason: Reason | None = None


class ScheduleState(msgspec.Struct, frozen=True):
    """A schedule as the ledger has it now."""

    name: str
    cron: str
    timezone: str
    queue: str
    customer_id: str
    payload: Any
    missed: str
    priority: int
    max_attempts: int
    paused: bool
    removed: bool
    next_tick: datetime | None
    last_tick: datetime | None
    last_late: float | None


def state_of(schedule: Schedule) -> ScheduleState:
    spec = schedule.settings
    return ScheduleState(
        name=spec.name, cron=spec.cron, timezone=spec.timezone, queue=spec.queue,
        customer_id=spec.customer_id, payload=spec.payload, missed=str(spec.missed),
        priority=spec.priority, max_attempts=spec.max_attempts, paused=schedule.paused,
        removed=schedule.removed, next_tick=schedule.next_tick, last_tick=schedule.last_tick,
        last_late=schedule.last_late,
    )


async def _act(jobs: JobReads, act: Callable[[ScheduleBook], Schedule]) -> ScheduleState:
    book = ScheduleBook(jobs.ledger)
    try:
        schedule = await anyio.to_thread.run_sync(act, book)
    except ScheduleNotFound as error:
        raise ApiError(404, str(error), code=error.code) from None
    except ScheduleExists as error:
        raise ApiError(409, str(error), code=error.code) from None
    return state_of(schedule)


@get("/schedules", opt={"access": OPERATOR}, summary="Cron schedules", tags=["operator"])
async def list_schedules(jobs: NamedDependency[JobReads]) -> list[ScheduleRow]:
    """Every schedule not removed (the ``schedules`` view): cron, zone, state, the next
    tick and the last one fired, how late and by which scheduler."""
    return await jobs.views.read(lambda store: ScheduleQueries(store).all())


@post("/schedules", status_code=201, opt={"access": OPERATOR, "body": ScheduleRequest},
      summary="Add a cron schedule", tags=["operator"])
async def add_schedule(
    request: Request[Any, Any, Any], jobs: NamedDependency[JobReads]
) -> ScheduleState:
    """Validated whole (cron, zone, name, queue, payload of at most 64 KiB): a bad part is
    422 ``invalid_schedule`` naming it, a name in use 409, and nothing is recorded."""
    body = await read_body(request, ScheduleRequest)
    actor = operator_actor(principal_of(request))
    spec = ScheduleSpec(**{
        f: getattr(body, f) for f in ScheduleSpec.__struct_fields__
    })
    return await _act(jobs, lambda book: book.add(spec, actor, body.reason, utc_now()))


async def _control(
    request: Request[Any, Any, Any], jobs: JobReads, name: str, verb: str
) -> ScheduleState:
    body = await read_body(request, ReasonRequest)
    actor = operator_actor(principal_of(request))
    return await _act(
        jobs, lambda book: getattr(book, verb)(name, actor, body.reason, utc_now())
    )


@post("/schedules/{name:str}/pause", status_code=200,
      opt={"access": OPERATOR, "body": ReasonRequest}, summary="Pause a schedule",
      tags=["operator"])
async def pause_schedule(
    request: Request[Any, Any, Any], name: NamePath, jobs: NamedDependency[JobReads]
) -> ScheduleState:
    """Fire none of its ticks until it is resumed."""
    return await _control(request, jobs, name, "pause")


@post("/schedules/{name:str}/resume", status_code=200,
      opt={"access": OPERATOR, "body": ReasonRequest}, summary="Resume a schedule",
      tags=["operator"])
async def resume_schedule(
    request: Request[Any, Any, Any], name: NamePath, jobs: NamedDependency[JobReads]
) -> ScheduleState:
    """Fire its ticks again from the next one (the pause's ticks are not fired)."""
    return await _control(request, jobs, name, "resume")


@post("/schedules/{name:str}/remove", status_code=200,
      opt={"access": OPERATOR, "body": ReasonRequest}, summary="Remove a schedule",
      tags=["operator"])
async def remove_schedule(
    request: Request[Any, Any, Any], name: NamePath, jobs: NamedDependency[JobReads]
) -> ScheduleState:
    """Remove it (its history stays in the log; the name may be added again)."""
    return await _control(request, jobs, name, "remove")


ROUTES = [list_schedules, add_schedule, pause_schedule, resume_schedule, remove_schedule]
