"""The jobs list (filters, keyset pagination in id order) and bulk cancel or retry of the
selected jobs or of all matching, after a confirmation page that shows the count.

The list is the bulk actions' own query (:class:`ActionTargets` over ``job_status``):
what a page shows is what "all matching" acts on. Selecting is a GET (nothing changes);
only the confirmation's POST acts, with its CSRF token, as an admin.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import anyio.to_thread
from litestar import Request, Response, get, post
from litestar.di import NamedDependency

from adapters.http.console.render import actor, actor_name, page, reader
from adapters.http.console.session import Console
from adapters.http.services import JobReads, Writer
from adapters.service.actions import ActionRunner, action_filter, command_for
from adapters.service.bootstrap import utc_now
from ledger.action import ActionFilter, ActionKind, InvalidFilter, checked_filter, checked_reason
from ledger.errors import LedgerError
from ledger.status import Status
from projections.queries.action_targets import ActionTargets

PAGE_SIZE = 50
COUNT_CAP = 10_000
"""The jobs page counts matching jobs up to this many ("more than 10,000" beyond), so its
time does not grow with the ledger; the confirmation of "all matching" counts them all."""
MAX_SELECTED = 1000
FIELDS = ("status", "queue", "customer_id", "since", "until", "error_contains")


def _moment(name: str, text: str) -> str:
    """A time as typed in a form: ISO 8601, taken as UTC when it names no zone."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidFilter(f"{name}: {text[:40]!r} is not a time such as 2026-12-04T10:00"
                            ) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


def filter_of(values: Any) -> ActionFilter:
    """The filter the form's fields give (blank fields are left out)."""
    data: dict[str, Any] = {}
    for name in FIELDS:
        text = str(values.get(name) or "").strip()
        if text:
            data[name] = _moment(name, text) if name in ("since", "until") else text
    return checked_filter(data)


def _query(job_filter: ActionFilter) -> dict[str, str]:
    return {k: str(v) for k, v in job_filter.to_dict().items()}


def _after(text: str | None) -> UUID | None:
    try:
        return UUID(text) if text else None
    except ValueError:
        raise InvalidFilter(f"after: {str(text)[:40]!r} is not a job id") from None


@get("/jobs", include_in_schema=False)
async def jobs_page(
    request: Request[Any, Any, Any], console: NamedDependency[Console],
    jobs: NamedDependency[JobReads],
) -> Response[str]:
    viewer = await reader(request, console)
    params = request.query_params
    job_filter = filter_of(params)
    after = _after(params.get("after"))

    def read(store: Any) -> tuple[list[Any], int]:
        targets = ActionTargets(store)
        return (targets.page(job_filter, after, PAGE_SIZE + 1),
                targets.count_upto(job_filter, COUNT_CAP + 1))

    rows, total = await jobs.views.read(read)
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    template = "jobs_table.html" if request.headers.get("hx-request") else "jobs.html"
    return page(
        request, viewer, template, rows=rows, total=min(total, COUNT_CAP),
        more_than=total > COUNT_CAP, filter=_query(job_filter),
        statuses=[s.value for s in Status], after=after,
        next_after=str(rows[-1].job_id) if more and rows else None,
    )


def _selection(values: Any) -> tuple[ActionKind, list[UUID] | None, ActionFilter]:
    """What the selection form asks: ``do`` = ``cancel|retry`` ``:selected|all``."""
    kind_text, _, scope = str(values.get("do") or "").partition(":")
    try:
        kind = ActionKind(kind_text)
    except ValueError:
        raise InvalidFilter("choose cancel or retry") from None
    if kind is ActionKind.REQUEUE:
        raise InvalidFilter("choose cancel or retry")
    job_filter = filter_of(values)
    if scope == "all":
        return kind, None, action_filter(kind, job_filter)
    ids = [UUID(str(v)) for v in values.getall("job_id", [])[:MAX_SELECTED + 1]
           if _is_uuid(str(v))]
    if not ids:
        raise InvalidFilter("select at least one job, or act on all matching")
    if len(ids) > MAX_SELECTED:
        raise InvalidFilter(f"select at most {MAX_SELECTED} jobs (or act on all matching)")
    return kind, list(dict.fromkeys(ids)), job_filter


def _is_uuid(text: str) -> bool:
    try:
        UUID(text)
    except ValueError:
        return False
    return True


@get("/jobs/confirm", include_in_schema=False)
async def confirm(
    request: Request[Any, Any, Any], console: NamedDependency[Console],
    jobs: NamedDependency[JobReads],
) -> Response[str]:
    """What would be acted on: the count (and the filter or the ids); nothing changes."""
    viewer = await reader(request, console)
    kind, ids, job_filter = _selection(request.query_params)
    count = len(ids) if ids is not None else await jobs.views.read(
        lambda s: ActionTargets(s).count(job_filter))
    return page(request, viewer, "confirm.html", kind=kind.value, ids=ids, count=count,
                filter=_query(job_filter))


@post("/jobs/bulk", include_in_schema=False, status_code=200)
async def bulk(
    request: Request[Any, Any, Any], console: NamedDependency[Console],
    jobs: NamedDependency[JobReads],
    writer: NamedDependency[Writer],
) -> Response[str]:
    viewer, form = await actor(request, console)
    kind, ids, job_filter = _selection(form)
    reason = checked_reason(str(form.get("reason") or "") or None)
    who = actor_name(viewer)
    if ids is not None:
        results = await writer.execute_many(
            [command_for(kind, job_id, who, reason, None) for job_id in ids])
        done = sum(1 for r in results if not isinstance(r, LedgerError))
        summary = {"kind": kind.value, "total": len(ids), "acted": done,
                   "skipped": len(ids) - done, "action_id": None}
    else:
        runner = ActionRunner(jobs.ledger, jobs.views.use, utc_now)
        action = await anyio.to_thread.run_sync(runner.start, kind, job_filter, who, reason)
        action = await anyio.to_thread.run_sync(runner.run, action.id)
        data = action.summary()
        summary = {"kind": kind.value, "total": data.get("total"), "acted": data.get("acted"),
                   "skipped": data.get("skipped"), "action_id": str(action.id)}
    return page(request, viewer, "bulk_done.html", summary=summary)


ROUTES = [jobs_page, confirm, bulk]
