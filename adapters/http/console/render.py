"""Templates (Jinja2, autoescaped), the viewer of a request, and the console's errors as
HTML pages: everything the console's pages share."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio.to_thread
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from litestar import Request, Response
from litestar.datastructures import Cookie
from litestar.exceptions import HTTPException
from litestar.response import Redirect

from adapters.http.console.session import (
    COOKIE,
    MAX_AGE_SECONDS,
    Console,
    ConsoleRefused,
    NotSignedIn,
    Viewer,
    check_csrf,
    viewer_for,
)
from adapters.http.problems import ApiError, status_of
from ledger.errors import LedgerError

HERE = Path(__file__).parent
TEMPLATES = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def when(value: datetime | str | None) -> str:
    """A time as ``YYYY-MM-DD HH:MM:SS.mmm`` (UTC), or an em dash."""
    if value is None:
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


TEMPLATES.filters["when"] = when
TEMPLATES.filters["short"] = lambda value: str(value)[:8]


def cookie_for(request: Request[Any, Any, Any], value: str, max_age: int) -> Cookie:
    return Cookie(
        key=COOKIE, value=value, path="/ui", httponly=True, samesite="strict",
        secure=request.url.scheme == "https", max_age=max_age,
    )


def page(
    request: Request[Any, Any, Any], viewer: Viewer, template: str, status: int = 200,
    **context: Any,
) -> Response[str]:
    """The template rendered for ``viewer`` (and its fresh session cookie, if any)."""
    html = TEMPLATES.get_template(template).render(
        viewer=viewer, csrf=viewer.csrf, path=request.url.path, **context
    )
    cookies = []
    if viewer.fresh_cookie is not None:
        cookies.append(cookie_for(request, viewer.fresh_cookie, MAX_AGE_SECONDS))
    return Response(
        html, status_code=status, media_type="text/html; charset=utf-8", cookies=cookies,
        headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY",
                 "Content-Security-Policy": CSP, "Referrer-Policy": "same-origin"},
    )


CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
"""No inline script, nothing from elsewhere (hostile job text cannot run anything)."""


async def viewer_of(request: Request[Any, Any, Any], console: Console) -> Viewer:
    cookie = request.cookies.get(COOKIE)
    open_now = await console.access.open_now() and _loopback_host(request)
    return await anyio.to_thread.run_sync(viewer_for, console, cookie, open_now)


def _loopback_host(request: Request[Any, Any, Any]) -> bool:
    """The open console answers only requests addressed to a loopback name, so a page of
    another site whose name resolves to 127.0.0.1 (DNS rebinding) gets the sign-in page."""
    host = request.headers.get("host", "")
    name = host[1:].partition("]")[0] if host.startswith("[") else host.partition(":")[0]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


async def reader(request: Request[Any, Any, Any], console: Console) -> Viewer:
    """The viewer of a read page: signed in (staff or admin) or the open console."""
    viewer = await viewer_of(request, console)
    if viewer.principal is None:
        raise NotSignedIn()
    return viewer


async def actor(
    request: Request[Any, Any, Any], console: Console
) -> tuple[Viewer, Any]:
    """The viewer of a POST that acts, with its form: signed in as admin, CSRF checked.
    Refusals are raised before anything is appended."""
    viewer = await viewer_of(request, console)
    form = await request.form()
    check_csrf(console, viewer, form.get("csrf"))
    if viewer.principal is None:
        raise NotSignedIn()
    if not viewer.may_act:
        raise ConsoleRefused("this key is staff: it may read the console; acting needs admin")
    return viewer, form


def actor_name(viewer: Viewer) -> str:
    """Who the ledger records as asking (as the API does: ``api:key:<id>:<role>``)."""
    p = viewer.principal
    if p is None or p.key_id is None:
        return "ui:open"
    return f"ui:key:{p.key_id}:{p.role}"


def _error_page(request: Request[Any, Any, Any], status: int, message: str) -> Response[str]:
    html = TEMPLATES.get_template("error.html").render(
        status=status, message=message, viewer=None, csrf="", path=request.url.path
    )
    return Response(html, status_code=status, media_type="text/html; charset=utf-8",
                    headers={"Content-Security-Policy": CSP, "Cache-Control": "no-store"})


def on_console_error(request: Request[Any, Any, Any], error: Exception) -> Response[Any]:
    """Errors as HTML pages: not signed in -> the sign-in page; refusals 403; the ledger's
    named errors with the API's status codes."""
    if isinstance(error, NotSignedIn):
        if request.method == "GET":
            return Redirect(f"/ui/login?next={request.url.path}", status_code=303)
        return _error_page(request, 401, str(error))
    if isinstance(error, ConsoleRefused):
        return _error_page(request, 403, str(error))
    if isinstance(error, ApiError):
        return _error_page(request, error.status, error.detail)
    if isinstance(error, LedgerError):
        return _error_page(request, status_of(error), str(error))
    if isinstance(error, HTTPException):
        return _error_page(request, error.status_code, str(error.detail))
    raise error


Handler = Callable[[Request[Any, Any, Any], Any], Response[Any]]
CONSOLE_ERRORS: dict[int | type[Exception], Handler] = {
    LedgerError: on_console_error, ApiError: on_console_error,
    HTTPException: on_console_error,
}
