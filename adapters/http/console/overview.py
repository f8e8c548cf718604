"""The overview: the ``/health`` body rendered (from the health monitor's cached check,
never the log), live through server-sent events, and the per-minute charts."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from typing import Any

import anyio
import msgspec
from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.response import ServerSentEvent

from adapters.http.console.render import TEMPLATES, page, reader
from adapters.http.console.session import Console
from adapters.http.health import HealthMonitor
from adapters.http.health_body import Health
from adapters.http.services import JobReads
from adapters.service.bootstrap import utc_now
from projections.queries.health_minutes import Minutes, last_minutes

LIVE_SECONDS = 2.0
"""How often the live overview sends a fresh health panel."""
CHART_MINUTES = 180
"""The charts cover the last three hours."""
LIVE_MAX_EVENTS = 1800
"""A stream ends after this many panels (an hour); the browser reconnects."""


def _health(report: Health) -> dict[str, Any]:
    data: dict[str, Any] = msgspec.to_builtins(report)
    return data


async def _report(monitor: HealthMonitor) -> dict[str, Any]:
    return _health(monitor.report(await monitor.current()))


@get("/", include_in_schema=False)
async def overview(
    request: Request[Any, Any, Any], console: NamedDependency[Console],
    monitor: NamedDependency[HealthMonitor],
) -> Response[str]:
    viewer = await reader(request, console)
    return page(request, viewer, "overview.html", health=await _report(monitor))


@get("/overview/health", include_in_schema=False)
async def health_panel(
    request: Request[Any, Any, Any], console: NamedDependency[Console],
    monitor: NamedDependency[HealthMonitor],
) -> Response[str]:
    """The health panel alone (htmx swaps it in; without JavaScript, reload the page)."""
    viewer = await reader(request, console)
    return page(request, viewer, "health_panel.html", health=await _report(monitor))


@get("/overview/stream", include_in_schema=False)
async def health_stream(
    request: Request[Any, Any, Any], console: NamedDependency[Console],
    monitor: NamedDependency[HealthMonitor],
) -> ServerSentEvent:
    """The health panel as an HTML fragment every ``LIVE_SECONDS`` (event ``health``)."""
    viewer = await reader(request, console)
    template = TEMPLATES.get_template("health_panel.html")

    async def panels() -> AsyncGenerator[str, None]:
        for _ in range(LIVE_MAX_EVENTS):
            html = template.render(health=await _report(monitor), viewer=viewer,
                                   csrf=viewer.csrf, path="/ui")
            yield " ".join(html.split())
            await anyio.sleep(LIVE_SECONDS)

    return ServerSentEvent(panels(), event_type="health")


async def _minutes(jobs: JobReads) -> Minutes:
    now = utc_now()
    return await jobs.views.read(lambda store: last_minutes(store, now, CHART_MINUTES))


@get("/overview/minutes.json", include_in_schema=False)
async def minutes_json(
    request: Request[Any, Any, Any], console: NamedDependency[Console],
    jobs: NamedDependency[JobReads],
) -> Response[Minutes]:
    """The chart's series (``health_minutes``): minute starts and one list per counter."""
    await reader(request, console)
    return Response(await _minutes(jobs), headers={"Cache-Control": "no-store"})


@get("/overview/minutes", include_in_schema=False)
async def minutes_table(
    request: Request[Any, Any, Any], console: NamedDependency[Console],
    jobs: NamedDependency[JobReads],
) -> Response[str]:
    """The same counts as a table, newest minute first, minutes with any count only."""
    viewer = await reader(request, console)
    found = await _minutes(jobs)
    rows = [(datetime.fromtimestamp(m, UTC), [v[i] for v in found.values])
            for i, m in enumerate(found.minutes)]
    rows = [row for row in reversed(rows) if any(row[1])]
    return page(request, viewer, "minutes.html", names=found.names, rows=rows,
                hours=CHART_MINUTES // 60)


ROUTES = [overview, health_panel, health_stream, minutes_json, minutes_table]
