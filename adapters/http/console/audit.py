"""Audit: run ``ledger audit``'s checks (:func:`adapters.service.audit.run_audit`) and show
the result, each violation linked to what it is about: a queue-level one (a pause, a cap)
to the queue's row on the queues page, one of a job to the job's page, an archive
segment's named as text. It reads the whole log, so it runs when
asked (a POST with the CSRF token; staff may run it: it changes nothing), one at a time."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import anyio
import anyio.to_thread
from litestar import Request, Response, get, post
from litestar.di import NamedDependency

from adapters.http.console.render import page, reader
from adapters.http.console.session import Console, check_csrf
from adapters.service.audit import AuditReport, run_audit
from adapters.service.bootstrap import utc_now
from projections.registry import VIEWS

_running = anyio.Lock()


@get("/audit", include_in_schema=False)
async def audit_page(
    request: Request[Any, Any, Any], console: NamedDependency[Console],
) -> Response[str]:
    viewer = await reader(request, console)
    return page(request, viewer, "audit.html", report=None)


@post("/audit", include_in_schema=False, status_code=200)
async def run(
    request: Request[Any, Any, Any], console: NamedDependency[Console],
) -> Response[str]:
    viewer = await reader(request, console)
    form = await request.form()
    check_csrf(console, viewer, form.get("csrf"))
    with_views = form.get("views") == "on"

    def audit() -> AuditReport:
        return run_audit(console.open_views, list(VIEWS.values()) if with_views else [],
                         now=utc_now, alert_grace=console.alert_grace)

    async with _running:
        report = await anyio.to_thread.run_sync(audit)
    data = report.to_dict()
    for violation in data["violations"]:
        violation["is_job"] = _is_job_id(str(violation["job_id"]))
    return page(request, viewer, "audit.html", report=data, seconds=round(report.seconds, 2))


def _is_job_id(text: str) -> bool:
    """Whether a violation's subject is a job (an id), not an archive segment's name."""
    try:
        UUID(text)
    except ValueError:
        return False
    return True


ROUTES = [audit_page, run]
