"""The path of a request, checked before its route runs: it must be UTF-8 once its percent
escapes are decoded, and each text path parameter must be text the ledger could hold.

Servers decode a path leniently (uvicorn turns ``%FF`` into U+FFFD), so a path that is not
UTF-8 would otherwise reach a route as some other, valid, name; and a control character
such as U+0000 would reach the database, which PostgreSQL refuses. Both are answered 400
``invalid_path`` with the reason, before authentication.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

from adapters.http.problems import ApiError
from ledger.text import name_problem


def check_path(scope: Scope) -> None:
    """Raise the 400 for a path that is not UTF-8 or a text parameter that is odd."""
    raw = scope.get("raw_path")
    if isinstance(raw, bytes):
        try:
            unquote_to_bytes(raw).decode("utf-8")
        except UnicodeDecodeError as error:
            raise ApiError(
                400, f"the path is not UTF-8 once percent-decoded (byte {error.start})",
                code="invalid_path",
            ) from None
    for name, value in scope.get("path_params", {}).items():
        if isinstance(value, str) and (reason := name_problem(value)) is not None:
            raise ApiError(400, f"the path parameter {name}: {reason}", code="invalid_path")


def path_guard(app: ASGIApp) -> ASGIApp:
    """Litestar middleware: :func:`check_path` before the route (and its access check)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            check_path(scope)
        await app(scope, receive, send)

    return middleware
