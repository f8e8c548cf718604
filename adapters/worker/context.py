"""What a handler sees (:class:`JobContext`) and how handlers are found and called.

A handler is a plain or an async function of one argument, the job's context; what it
returns (JSON) becomes the job's result, what it raises becomes the attempt's failure:

    def resize(ctx: JobContext) -> dict[str, int]:
        return {"width": ctx.payload["width"] // 2}

Plain handlers run in a worker thread. They cannot be interrupted, so a long one should
look at ``ctx.cancelled`` (or call ``ctx.raise_if_cancelled()``) now and then: it is set
when an operator cancelled the job (``ctx.cancel_requested``), the attempt was superseded
(the ledger gave the job to another worker) or the worker is shutting down and its grace
period is over. Async handlers are cancelled outright.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeAlias
from uuid import UUID

from ledger.errors import LedgerError

Handler: TypeAlias = Callable[["JobContext"], Any] | Callable[["JobContext"], Awaitable[Any]]
"""A job handler: ``handler(ctx) -> result``, plain or async."""


class HandlerNotFound(LedgerError):
    """The handler could not be loaded."""

    code = "handler_not_found"


class Cancelled(Exception):
    """Raised by :meth:`JobContext.raise_if_cancelled`: the attempt no longer counts."""


@dataclass(eq=False)
class JobContext:
    """One attempt of one job, as its handler sees it."""

    job_id: UUID
    attempt: int
    payload: Any
    customer_id: str
    queue: str
    worker_id: str
    receive_count: int = 1
    """How often the transport delivered this message (1 on the first delivery)."""
    _superseded: threading.Event = field(default_factory=threading.Event, repr=False)
    _stopping: threading.Event = field(default_factory=threading.Event, repr=False)
    _cancel_requested: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def cancel_requested(self) -> bool:
        """True once the ledger said an operator cancelled this job (ADR 100): the worker
        reports the attempt cancelled when the handler stops."""
        return self._cancel_requested.is_set()

    @property
    def superseded(self) -> bool:
        """True once the ledger said this attempt is no longer current: whatever the
        handler does now is not recorded (another worker may run the job)."""
        return self._superseded.is_set()

    @property
    def shutting_down(self) -> bool:
        """True once the worker's grace period ended with this handler still running."""
        return self._stopping.is_set()

    @property
    def cancelled(self) -> bool:
        """True when the handler should stop: cancelled by an operator, superseded, or
        interrupted by shutdown."""
        return self.cancel_requested or self.superseded or self.shutting_down

    def raise_if_cancelled(self) -> None:
        """Raise :class:`Cancelled` if the handler should stop (for plain handlers)."""
        if self.cancelled:
            reason = (
                "cancelled" if self.cancel_requested
                else "superseded" if self.superseded else "the worker is shutting down"
            )
            raise Cancelled(f"job {self.job_id} attempt {self.attempt}: {reason}")


def load_handler(path: str, *, search: str | None = None) -> Handler:
    """The function named ``module:function`` (``search``, default the working directory,
    is put first on ``sys.path`` so local modules are found, as ``uvicorn`` does).

    Raises :class:`HandlerNotFound` with a one-line reason.
    """
    module_name, sep, attribute = path.partition(":")
    if not sep or not module_name or not attribute:
        raise HandlerNotFound(f"handler {path!r} is not of the form module:function")
    directory = os.path.abspath(search if search is not None else os.getcwd())
    if directory not in sys.path:
        sys.path.insert(0, directory)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name is not None and module_name.startswith(error.name):
            raise HandlerNotFound(
                f"handler {path!r}: no module named {error.name!r}"
            ) from None
        raise HandlerNotFound(f"handler {path!r}: importing it failed: {error}") from None
    except Exception as error:
        raise HandlerNotFound(
            f"handler {path!r}: importing it failed: {type(error).__name__}: {error}"
        ) from None
    found: object = module
    for part in attribute.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise HandlerNotFound(
                f"handler {path!r}: module {module_name!r} has no {attribute!r}"
            ) from None
    if not callable(found):
        raise HandlerNotFound(f"handler {path!r} is not callable")
    return check_handler(found, path)


def check_handler(handler: Callable[..., Any], name: str | None = None) -> Handler:
    """``handler`` if it can be called with one positional argument (the context)."""
    shown = name or getattr(handler, "__qualname__", repr(handler))
    try:
        inspect.signature(handler).bind(None)
    except TypeError:
        raise HandlerNotFound(
            f"handler {shown!r} must accept one argument, the job's context"
        ) from None
    except ValueError:  # no signature (some builtins): trust it
        pass
    return handler


def is_async(handler: Handler) -> bool:
    """True for ``async def`` handlers (and callables whose ``__call__`` is async)."""
    if inspect.iscoroutinefunction(handler):
        return True
    call = getattr(handler, "__call__", None)  # noqa: B004 - looking for an async __call__
    return call is not None and inspect.iscoroutinefunction(call)
