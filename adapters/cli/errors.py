"""How every ``ledger`` command fails: one line on stderr and an exit status.

The ledger's named errors (bad configuration, unknown job ids, refused commands, a
database that cannot be reached: drivers raise them as :class:`~ledger.errors.StoreError`)
print ``PROGRAM: error: MESSAGE`` on one line and exit 1, never with a traceback.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

import typer

from ledger.errors import LedgerError

P = ParamSpec("P")
R = TypeVar("R")

PROGRAM = "ledger"
FAILED = 1
"""The exit status of a command that failed with a named error."""


class InvalidOptions(LedgerError):
    """The command's options are invalid."""

    code = "invalid_options"


def error_line(message: str, program: str = PROGRAM) -> None:
    """Write ``program: error: message`` on stderr, the message on one line."""
    sys.stderr.write(f"{program}: error: {' '.join(message.split())}\n")
    sys.stderr.flush()


@contextmanager
def reported(program: str = PROGRAM) -> Iterator[None]:
    """A :class:`LedgerError` raised inside becomes one line on stderr and exit status 1."""
    try:
        yield
    except LedgerError as error:
        error_line(str(error), program)
        raise typer.Exit(FAILED) from None


def user_errors(func: Callable[P, R]) -> Callable[P, R]:
    """The command ``func`` with its named errors :func:`reported`."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with reported():
            return func(*args, **kwargs)

    return wrapper
