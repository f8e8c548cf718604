"""The overview: the ``/health`` body rendered (from the health monitor's cached check,
never the log), live through server-sent events, and the per-minute charts."""

from __future__ import annotations

from collections.abc import AsyncGenerator
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

LIVE_SECONDS = 2.0
"""How often the live overview sends a fresh health panel."""
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


ROUTES = [overview, health_panel, health_stream]
