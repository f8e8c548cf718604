"""Sign in with an API key (``POST /ui/login``) and out (``POST /ui/logout``).

A good staff or admin key starts a new session (a new nonce, so a token seen before the
sign-in is worthless after it); a bad key counts against the ``auth`` rate-limit preset
of the client's address, as a bad key does on the API.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.response import Redirect

from adapters.http.console.render import cookie_for, page, viewer_of
from adapters.http.console.session import (
    MAX_AGE_SECONDS,
    Console,
    check_csrf,
    encode,
    new_session,
)
from adapters.http.ratelimit import Limiter
from ledger.access import Role


def safe_next(target: object) -> str:
    """Where to go after signing in: a console path, never another site."""
    text = str(target or "")
    if not text.startswith("/ui") or text.startswith("//") or "\\" in text or len(text) > 500:
        return "/ui"
    return text


@get("/login", include_in_schema=False)
async def login_form(
    request: Request[Any, Any, Any], console: NamedDependency[Console]
) -> Response[str]:
    viewer = await viewer_of(request, console)
    return page(request, viewer, "login.html", next=safe_next(request.query_params.get("next")),
                error=None)


@post("/login", include_in_schema=False, status_code=303)
async def login(
    request: Request[Any, Any, Any], console: NamedDependency[Console],
    limiter: NamedDependency[Limiter],
) -> Response[Any]:
    viewer = await viewer_of(request, console)
    form = await request.form()
    check_csrf(console, viewer, form.get("csrf"))
    target = safe_next(form.get("next"))
    key = str(form.get("api_key") or "").strip()
    principal = await console.access.principal_for(key) if key else None
    if principal is None or principal.role not in (Role.STAFF, Role.ADMIN):
        client = request.client.host if request.client else "unknown"
        decision = await limiter.decide("auth", f"ip:{client}")
        error = ("too many sign-ins with bad keys from this address; try again later"
                 if not decision.allowed else
                 "that key is not valid, or is not a staff or admin key")
        return page(request, viewer, "login.html", status=401 if decision.allowed else 429,
                    next=target, error=error)
    session = new_session(principal.key_id)
    response: Response[Any] = Redirect(target, status_code=303)
    response.set_cookie(cookie_for(request, encode(console.secret, session), MAX_AGE_SECONDS))
    return response


@post("/logout", include_in_schema=False, status_code=303)
async def logout(
    request: Request[Any, Any, Any], console: NamedDependency[Console]
) -> Response[Any]:
    viewer = await viewer_of(request, console)
    form = await request.form()
    check_csrf(console, viewer, form.get("csrf"))
    response: Response[Any] = Redirect("/ui/login", status_code=303)
    response.set_cookie(cookie_for(request, "", 0))
    return response


ROUTES = [login_form, login, logout]
