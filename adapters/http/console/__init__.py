"""The web console at ``/ui`` (issue 15, ADR 140): server-rendered pages over the views,
the operator controls as forms, signed-in with an API key.

:func:`console_router` is mounted by :func:`adapters.http.app.create_app` when the parts
carry a :class:`~adapters.http.console.session.Console` (``ledger serve --no-ui`` leaves
it out). Every route is left out of the OpenAPI document.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Router
from litestar.di import Provide
from litestar.static_files import create_static_files_router

from adapters.http.console import auth
from adapters.http.console.pages import ROUTES as PAGES
from adapters.http.console.render import CONSOLE_ERRORS
from adapters.http.console.session import Console

STATIC = Path(__file__).parent / "static"


def console_router(console: Console) -> list[Any]:
    """The console's routes and its static files."""

    def given() -> Console:
        return console

    router = Router(
        path="/ui",
        route_handlers=[*auth.ROUTES, *PAGES],
        dependencies={"console": Provide(given, use_cache=True, sync_to_thread=False)},
        exception_handlers=dict(CONSOLE_ERRORS),
        include_in_schema=False,
    )
    static = create_static_files_router(
        path="/ui/static", directories=[STATIC], include_in_schema=False,
        cache_control=None, name="console-static",
    )
    return [router, static]


__all__ = ["Console", "console_router"]
