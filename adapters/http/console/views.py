"""Views: each projection's position, lag and last error; rebuild and verify (admin),
running in the background with their progress on this page."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, PathParameter
from litestar.response import Redirect

from adapters.http.console.render import actor, actor_name, page, reader
from adapters.http.console.session import Console
from adapters.http.services import JobReads
from projections.queries.lag import view_status
from projections.registry import VIEWS, get_view

ViewPath = Annotated[str, PathParameter(min_length=1, max_length=80)]


@get("/views", include_in_schema=False)
async def views_page(
    request: Request[Any, Any, Any], console: NamedDependency[Console],
    jobs: NamedDependency[JobReads],
) -> Response[str]:
    viewer = await reader(request, console)
    rows = await jobs.views.read(lambda s: view_status(s, list(VIEWS.values()), runners=True))
    tasks = dict(console.tasks.tasks)
    template = "views_table.html" if request.headers.get("hx-request") else "views.html"
    return page(request, viewer, template, rows=rows, tasks=tasks,
                busy=any(t.state == "running" for t in tasks.values()))


@post("/views/{name:str}/{kind:str}", include_in_schema=False, status_code=303)
async def start_task(
    request: Request[Any, Any, Any], name: ViewPath, kind: FromPath[str],
    console: NamedDependency[Console],
) -> Response[Any]:
    """Start a ``rebuild`` or ``verify`` of the view (admin)."""
    viewer, _ = await actor(request, console)
    view = get_view(name)
    if kind not in ("rebuild", "verify"):
        kind = "verify"
    console.tasks.start(console.open_views, view, kind, actor_name(viewer), console.rebuilds)
    return Redirect("/ui/views", status_code=303)


ROUTES = [views_page, start_task]
