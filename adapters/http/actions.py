"""Bulk actions over HTTP (ADR 100): ``POST /actions`` (staff or admin) runs one to its
end (or answers a dry run), ``GET /actions/{id}`` shows one, ``POST /actions/{id}/resume``
finishes one that was interrupted. The actor recorded is the caller's key and role."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import anyio.to_thread
import msgspec
from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath

from adapters.http.access import principal_of, rule
from adapters.http.bodies import read_body
from adapters.http.control_bodies import ActionPreview, ActionRequest, ActionSample, ActionView
from adapters.http.problems import ApiError
from adapters.http.services import JobReads
from adapters.service.actions import ActionRunner, action_filter
from adapters.service.bootstrap import utc_now
from ledger.access import OPEN, Principal, Role
from ledger.action import Action, ActionNotFound

OPERATOR = rule(Role.STAFF, preset="staff")


def operator_actor(principal: Principal) -> str:
    """Who the ledger records as asking: ``api:key:<id>:<role>``, or ``api:open``."""
    if principal is OPEN or principal.key_id is None:
        return "api:open"
    return f"api:key:{principal.key_id}:{principal.role}"


def runner_of(jobs: JobReads) -> ActionRunner:
    return ActionRunner(jobs.ledger, jobs.views.use, utc_now)


def view_of(action: Action) -> ActionView:
    return msgspec.convert(action.summary(), ActionView)


async def _get(runner: ActionRunner, action_id: UUID) -> Action:
    try:
        return await anyio.to_thread.run_sync(runner.get, action_id)
    except ActionNotFound as error:
        raise ApiError(404, str(error), code=error.code) from None


@post(
    "/actions", status_code=200, opt={"access": OPERATOR, "body": ActionRequest},
    summary="Cancel, retry or requeue every job matching a filter", tags=["operator"],
)
async def start_action(
    request: Request[Any, Any, Any], jobs: NamedDependency[JobReads]
) -> ActionView | ActionPreview:
    """Select the jobs matching ``filter`` (status, queue, customer_id, since/until on the
    enqueue time, error_contains) in id order and act on them in batches of 1,000, each
    job's event naming the action; answers when done. ``dry_run``: the count and a sample
    of ten, nothing appended."""
    body = await read_body(request, ActionRequest)
    job_filter = action_filter(body.kind, body.filter)
    runner = runner_of(jobs)
    if body.dry_run:
        preview = await anyio.to_thread.run_sync(runner.preview, body.kind, job_filter)
        sample = [msgspec.convert(j.to_dict(), ActionSample, strict=False)
                  for j in preview.sample]
        return ActionPreview(kind=body.kind.value, filter=job_filter.to_dict(),
                             count=preview.count, sample=sample)
    actor = operator_actor(principal_of(request))
    action = await anyio.to_thread.run_sync(
        runner.start, body.kind, job_filter, actor, body.reason
    )
    return view_of(await anyio.to_thread.run_sync(runner.run, action.id))


@get(
    "/actions/{action_id:uuid}", opt={"access": OPERATOR},
    summary="A bulk action and how far it got", tags=["operator"],
)
async def show_action(action_id: FromPath[UUID], jobs: NamedDependency[JobReads]) -> ActionView:
    """The action's kind, filter, actor, reason, total, and the jobs done so far."""
    return view_of(await _get(runner_of(jobs), action_id))


@post(
    "/actions/{action_id:uuid}/resume", status_code=200, opt={"access": OPERATOR},
    summary="Resume an interrupted bulk action", tags=["operator"],
)
async def resume_action(
    action_id: FromPath[UUID], jobs: NamedDependency[JobReads]
) -> ActionView:
    """Go on after the action's last recorded batch; 409 if it has finished."""
    runner = runner_of(jobs)
    await _get(runner, action_id)
    return view_of(await anyio.to_thread.run_sync(runner.run, action_id))


ROUTES = [start_action, show_action, resume_action]
