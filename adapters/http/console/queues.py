"""Queues: depth, running against the cap, paused or not, today's throughput; pause,
resume and set the cap (admin), each an event naming the key (ADR 100)."""

from __future__ import annotations

from typing import Annotated, Any

import anyio.to_thread
from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, PathParameter
from litestar.response import Redirect

from adapters.http.console.render import actor, actor_name, page, reader
from adapters.http.console.session import Console
from adapters.http.health import HealthMonitor
from adapters.http.services import JobReads
from adapters.service.bootstrap import utc_now
from adapters.service.queue_controls import queue_states
from adapters.tracing import observe_queue
from ledger.action import checked_reason
from ledger.commands import PauseQueue, ResumeQueue, SetQueueLimit
from ledger.errors import LedgerError

QueuePath = Annotated[str, PathParameter(min_length=1, max_length=80)]


class BadCap(LedgerError):
    """The cap must be a whole number of at least 1, or empty for no cap."""

    code = "invalid_body"


@get("/queues", include_in_schema=False)
async def queues_page(
    request: Request[Any, Any, Any], console: NamedDependency[Console],
    jobs: NamedDependency[JobReads], monitor: NamedDependency[HealthMonitor],
) -> Response[str]:
    viewer = await reader(request, console)
    states = await anyio.to_thread.run_sync(queue_states, jobs.ledger, jobs.views.use)
    check = await monitor.current()
    today = {q.queue: q for q in check.figures.queues} if check.figures else {}
    return page(request, viewer, "queues.html", queues=states, today=today)


def _cap(text: str) -> int | None:
    if not text.strip():
        return None
    try:
        value = int(text)
    except ValueError:
        raise BadCap() from None
    if value < 1:
        raise BadCap()
    return value


@post("/queues/{queue:str}/{control:str}", include_in_schema=False, status_code=303)
async def control_queue(
    request: Request[Any, Any, Any], queue: QueuePath, control: FromPath[str],
    console: NamedDependency[Console], jobs: NamedDependency[JobReads],
) -> Response[Any]:
    """``pause``, ``resume`` or ``limit`` (field ``max_running``), with a ``reason``."""
    viewer, form = await actor(request, console)
    who, reason = actor_name(viewer), checked_reason(str(form.get("reason") or "") or None)
    command: PauseQueue | ResumeQueue | SetQueueLimit
    if control == "pause":
        command = PauseQueue(queue=queue, actor=who, reason=reason)
    elif control == "resume":
        command = ResumeQueue(queue=queue, actor=who, reason=reason)
    elif control == "limit":
        command = SetQueueLimit(queue=queue, actor=who, reason=reason,
                                max_running=_cap(str(form.get("max_running") or "")))
    else:
        raise BadCap(f"no control {control[:20]!r} (pause, resume or limit)")
    outcome = await anyio.to_thread.run_sync(jobs.ledger.control_queue, command, utc_now())
    observe_queue(command, outcome)
    return Redirect("/ui/queues", status_code=303)


ROUTES = [queues_page, control_queue]
