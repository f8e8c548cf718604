"""Bulk actions over HTTP (ADR 100): ``POST /actions`` (staff or admin) records one and
answers 202 with its ``Location`` while its batches run in the background of this process
(:mod:`adapters.service.action_runs`), or answers a dry run; ``GET /actions/{id}`` shows
how far one got; ``POST /actions/{id}/resume`` goes on with one that was interrupted, in
the background too. The actor recorded is the caller's key and role."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import anyio.to_thread
import msgspec
from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath

from adapters.http.access import principal_of, rule
from adapters.http.bodies import read_body
from adapters.http.control_bodies import ActionPreview, ActionRequest, ActionSample, ActionView
from adapters.http.problems import ApiError
from adapters.http.services import JobReads
from adapters.service.action_runs import BackgroundActions
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


def accepted(action: Action) -> Response[ActionView]:
    """202: the action is recorded and runs; ``Location`` is where to watch it."""
    return Response(view_of(action), status_code=202,
                    headers={"Location": f"/actions/{action.id}"})


@post(
    "/actions", status_code=202, opt={"access": OPERATOR, "body": ActionRequest},
    summary="Cancel, retry or requeue every job matching a filter", tags=["operator"],
    responses={200: ResponseSpec(ActionPreview, description="A dry run: count and sample")},
)
async def start_action(
    request: Request[Any, Any, Any],
    jobs: NamedDependency[JobReads],
    actions: NamedDependency[BackgroundActions],
) -> Response[ActionView | ActionPreview]:
    """Select the jobs matching ``filter`` (status, queue, customer_id, since/until on the
    enqueue time, error_contains) in id order and act on them in batches of 1,000, each
    job's event naming the action. Answers 202 once the action is recorded (with its
    total), ``Location: /actions/{id}``; the batches run in the background and
    ``GET /actions/{id}`` shows ``done`` of ``total`` and the ``state``. ``dry_run``: 200,
    the count and a sample of ten, nothing appended."""
    body = await read_body(request, ActionRequest)
    job_filter = action_filter(body.kind, body.filter)
    runner = runner_of(jobs)
    if body.dry_run:
        preview = await anyio.to_thread.run_sync(runner.preview, body.kind, job_filter)
        sample = [msgspec.convert(j.to_dict(), ActionSample, strict=False)
                  for j in preview.sample]
        return Response(ActionPreview(kind=body.kind.value, filter=job_filter.to_dict(),
                                      count=preview.count, sample=sample), status_code=200)
    actor = operator_actor(principal_of(request))
    action = await anyio.to_thread.run_sync(
        runner.start, body.kind, job_filter, actor, body.reason
    )
    actions.submit(action.id)
    return accepted(action)  # type: ignore[return-value]


@get(
    "/actions/{action_id:uuid}", opt={"access": OPERATOR},
    summary="A bulk action and how far it got", tags=["operator"],
)
async def show_action(action_id: FromPath[UUID], jobs: NamedDependency[JobReads]) -> ActionView:
    """The action's kind, filter, actor, reason, total, and the jobs done so far."""
    return view_of(await _get(runner_of(jobs), action_id))


@post(
    "/actions/{action_id:uuid}/resume", status_code=202, opt={"access": OPERATOR},
    summary="Resume an interrupted bulk action", tags=["operator"],
)
async def resume_action(
    action_id: FromPath[UUID],
    jobs: NamedDependency[JobReads],
    actions: NamedDependency[BackgroundActions],
) -> Response[ActionView]:
    """Go on after the action's last recorded batch, in the background (202, as
    ``POST /actions``; nothing more if this process is running it already); 409 if it
    has finished."""
    action = await _get(runner_of(jobs), action_id)
    action.check_resumable()
    actions.submit(action_id)
    return accepted(action)


ROUTES = [start_action, show_action, resume_action]
