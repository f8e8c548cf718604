"""The API's problem documents as the ledger's own exceptions.

A problem's ``code`` names a :mod:`ledger.errors` class (``attempt_superseded`` is
:class:`~ledger.errors.AttemptSuperseded`, ``job_not_found`` is
:class:`~ledger.errors.JobNotFound`, ...); the client raises a subclass of that class
which is also an :class:`ApiProblem`, so ``except AttemptSuperseded`` works the same on
the HTTP and the in-process client, and over HTTP the error also carries the ``http_status``,
the problem's ``code``, ``retry_after`` (seconds, from ``Retry-After``) and, for a batch,
the failing item's ``item_index``. Codes the ledger does not define map by status: 401/403
:class:`AccessDenied`, 404 :class:`~ledger.errors.JobNotFound`, 409
:class:`~ledger.errors.IllegalTransition`, other 4xx :class:`~ledger.errors.InvalidCommand`,
429 :class:`RateLimited`, 5xx and connection errors :class:`Unavailable`.
"""

from __future__ import annotations

from typing import Any, cast

import msgspec

from ledger import errors as ledger_errors
from ledger.errors import IllegalTransition, InvalidCommand, JobNotFound, LedgerError


class ApiProblem(Exception):
    """What the API said beside the ledger's error (mixed into every error it raises)."""

    http_status: int = 0
    problem_code: str | None = None
    retry_after: float | None = None
    """Seconds to wait before trying again (the answer's ``Retry-After``), if given."""
    item_index: int | None = None
    """The failing item of an ``enqueue_many``."""
    job_id: Any = None


class ClientError(ApiProblem, LedgerError):
    """The API refused the request."""

    code = "client_error"


class AccessDenied(ClientError):
    """The API refused the key (missing, unknown, revoked, or not allowed this)."""

    code = "access_denied"


class RateLimited(ClientError):
    """Too many requests: try again after ``retry_after`` seconds."""

    code = "rate_limited"


class Unavailable(ClientError):
    """The ledger did not answer (unreachable, failing, or not confirming in time)."""

    code = "unavailable"


class WaitTimedOut(LedgerError):
    """The job did not reach a terminal status in time."""

    code = "wait_timed_out"

    def __init__(self, job_id: object, timeout: float, status: str) -> None:
        self.job_id = job_id
        self.timeout = timeout
        self.status = status
        super().__init__(f"job {job_id} is still {status} after {timeout:g}s")


class TransactionalEnqueueUnsupported(LedgerError):
    """Enqueue in the application's transaction needs the ledger on PostgreSQL."""

    code = "transactional_enqueue_unsupported"


class _Problem(msgspec.Struct):
    detail: str = ""
    code: str | None = None
    errors: list[dict[str, Any]] | None = None


_BY_CODE: dict[str, type[LedgerError]] = {}
_SUBCLASS: dict[type[LedgerError], type[LedgerError]] = {}
_ALIASES: dict[str, type[LedgerError]] = {
    "rate_limited": RateLimited,
    "unauthenticated": AccessDenied,
    "invalid_key": AccessDenied,
    "forbidden": AccessDenied,
    "database_unavailable": Unavailable,
    "write_timeout": Unavailable,
    "store_unavailable": Unavailable,
    "store_error": Unavailable,
}


def _ledger_classes() -> dict[str, type[LedgerError]]:
    if not _BY_CODE:
        for value in vars(ledger_errors).values():
            if isinstance(value, type) and issubclass(value, LedgerError):
                _BY_CODE[value.code] = value
        _BY_CODE.update(_ALIASES)
    return _BY_CODE


def _by_status(status: int) -> type[LedgerError]:
    if status in (401, 403):
        return AccessDenied
    if status == 404:
        return JobNotFound
    if status == 409:
        return IllegalTransition
    if status == 429:
        return RateLimited
    if status >= 500:
        return Unavailable
    return InvalidCommand


def _api_class(cls: type[LedgerError]) -> type[LedgerError]:
    """``cls`` itself when it is already an :class:`ApiProblem`, else a subclass of both
    (made once per class)."""
    if issubclass(cls, ApiProblem):
        return cls
    found = _SUBCLASS.get(cls)
    if found is None:
        found = _SUBCLASS[cls] = cast(
            type[LedgerError], type(cls.__name__, (cls, ApiProblem), {"__module__": __name__})
        )
    return found


def problem_error(
    status: int, content: bytes, *, retry_after: float | None = None, job_id: Any = None
) -> LedgerError:
    """The exception for an error answer: its problem's code's class, else by status."""
    try:
        problem = msgspec.json.decode(content, type=_Problem)
    except msgspec.DecodeError:
        problem = _Problem(detail=content[:200].decode("utf-8", "replace"))
    cls = _ledger_classes().get(problem.code or "") or _by_status(status)
    error: LedgerError = Exception.__new__(_api_class(cls))
    LedgerError.__init__(error, problem.detail or f"HTTP {status}")
    extra = cast(ApiProblem, error)
    extra.http_status, extra.problem_code, extra.retry_after = status, problem.code, retry_after
    extra.job_id = job_id
    if problem.errors and isinstance(problem.errors[0].get("index"), int):
        extra.item_index = problem.errors[0]["index"]
    return error


def unavailable(detail: str) -> Unavailable:
    """A request that got no answer (connection refused, reset, timed out)."""
    return Unavailable(detail)
