"""Errors as ``application/problem+json`` (RFC 9457), one place for every status code.

The ledger's named errors map to statuses here; framework errors (no route, bad path
parameter, body too large) keep their status; a database that does not answer is 503;
anything else is a 500 that is logged (and, by the tests' fuzzing, never caused by a
client's mistake).
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException

from ledger.errors import (
    AttemptSuperseded,
    ConcurrencyExhausted,
    IdempotencyConflict,
    IllegalTransition,
    InvalidCommand,
    JobArchived,
    JobNotDue,
    JobNotFound,
    LedgerError,
    NotStale,
    QueueAtCapacity,
    QueuePaused,
    StoreError,
    TransportError,
    UnknownAttempt,
)

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

STATUS_OF: dict[type[LedgerError], int] = {
    JobNotFound: 404,
    JobArchived: 409,
    IllegalTransition: 409,
    AttemptSuperseded: 409,
    UnknownAttempt: 409,
    JobNotDue: 409,
    NotStale: 409,
    ConcurrencyExhausted: 409,
    QueuePaused: 429,
    QueueAtCapacity: 429,
    IdempotencyConflict: 422,
    InvalidCommand: 422,
    StoreError: 503,
    TransportError: 503,
}

RETRY_AFTER: dict[type[LedgerError], str] = {
    ConcurrencyExhausted: "1",
    QueuePaused: "5",
    QueueAtCapacity: "1",
}
"""``Retry-After`` seconds of the refusals a client should simply try again later (a
503 has ``1``). A paused or full queue is 429, not 409: a worker hands the message back
uncounted and claims again after this long (docs/adr/0100-operator-controls.md)."""

TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class Problem(msgspec.Struct, omit_defaults=True):
    """An RFC 9457 problem document."""

    title: str
    status: int
    detail: str
    type: str = "about:blank"
    code: str | None = None
    """A stable machine-readable name of the condition (``attempt_superseded``, ...)."""
    errors: list[dict[str, Any]] | None = None


class ApiError(Exception):
    """An error the API answers with ``status`` and a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.code = code
        self.headers = headers or {}
        self.errors = errors


def problem_response(
    status: int,
    detail: str,
    *,
    code: str | None = None,
    headers: dict[str, str] | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> Response[Problem]:
    body = Problem(
        title=TITLES.get(status, "Error"), status=status, detail=detail, code=code,
        errors=errors,
    )
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def status_of(error: LedgerError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS_OF:
            return STATUS_OF[cls]
    return 400


def on_api_error(_: Request[Any, Any, Any], error: ApiError) -> Response[Problem]:
    return problem_response(
        error.status, error.detail, code=error.code, headers=error.headers, errors=error.errors
    )


def on_ledger_error(_: Request[Any, Any, Any], error: LedgerError) -> Response[Problem]:
    status = status_of(error)
    retry = RETRY_AFTER.get(type(error), "1" if status == 503 else None)
    headers = {"Retry-After": retry} if retry else None
    return problem_response(status, str(error), code=error.code, headers=headers)


def on_http_exception(_: Request[Any, Any, Any], error: HTTPException) -> Response[Problem]:
    status = error.status_code
    if status >= 500:
        log.error("HTTP %s: %s", status, error.detail)
    extra = error.extra if isinstance(error.extra, list) else None
    detail = str(error.detail or TITLES.get(status, "Error"))
    return problem_response(
        status, detail, headers=dict(error.headers or {}) or None, errors=_errors(extra)
    )


def on_unexpected(request: Request[Any, Any, Any], error: Exception) -> Response[Problem]:
    if isinstance(error, ApiError):
        return on_api_error(request, error)
    if isinstance(error, LedgerError):
        return on_ledger_error(request, error)
    if isinstance(error, HTTPException):
        return on_http_exception(request, error)
    if _unavailable(error):
        log.warning("%s %s: database unavailable: %s", request.method, request.url.path, error)
        return problem_response(
            503, "the database is unavailable; try again shortly", code="database_unavailable",
            headers={"Retry-After": "1"},
        )
    log.exception("%s %s failed", request.method, request.url.path, exc_info=error)
    return problem_response(500, "internal error", code="internal_error")


def _unavailable(error: BaseException) -> bool:
    """Timeouts and refused connections of the standard library (the drivers and the
    event recorders raise :class:`StoreUnavailable`, a :class:`LedgerError`)."""
    return isinstance(error, TimeoutError | ConnectionError)


def _errors(extra: list[Any] | None) -> list[dict[str, Any]] | None:
    if not extra:
        return None
    return [e if isinstance(e, dict) else {"message": str(e)} for e in extra]


EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    ApiError: on_api_error,
    LedgerError: on_ledger_error,
    HTTPException: on_http_exception,
    Exception: on_unexpected,
}
