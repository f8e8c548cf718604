"""Job ids as the CLI takes them: a whole UUID, or the start of one (the demo and the
tables print ``a3b55162``), resolved from the ``job_status`` view when unambiguous."""

from __future__ import annotations

from uuid import UUID

import typer

from adapters.service.backend import Backend
from ledger.errors import LedgerError
from projections.queries.job_status import JobStatusQueries, id_range
from projections.registry import VIEWS
from projections.runner import catch_up_unfed
from projections.store import ViewStore

WHOLE = 32
"""Hex digits in a whole id."""


class UnknownJobPrefix(LedgerError):
    """No job has an id starting so."""

    code = "unknown_job_prefix"


class AmbiguousJobPrefix(LedgerError):
    """Several jobs have an id starting so."""

    code = "ambiguous_job_prefix"


def checked(value: str) -> str:
    """``value`` if it is a job id or the start of one, else ``ValueError`` saying so."""
    try:
        id_range(value)
    except ValueError:
        raise ValueError(
            f"{value!r} is not a job id (a UUID, or the start of one in hex digits)"
        ) from None
    return value


def job_ref(value: str) -> str:
    """The typer parser of a job id argument: usage error (exit 2) when malformed."""
    try:
        return checked(value)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None


def resolve(store: ViewStore, ref: str) -> UUID:
    """The job ``ref`` names: a whole id as it is, a prefix looked up in ``job_status``
    (caught up first when no runner feeds it)."""
    if len(ref.replace("-", "")) == WHOLE:
        return id_range(ref)[0]
    catch_up_unfed(store, [VIEWS["job_status"]])
    found = JobStatusQueries(store).with_id_prefix(ref, limit=3)
    if not found:
        raise UnknownJobPrefix(f"no job with an id starting {ref}")
    if len(found) > 1:
        shown = ", ".join(str(job_id) for job_id in found[:2])
        raise AmbiguousJobPrefix(
            f"{ref} is ambiguous: it starts {shown}{' and more' if len(found) > 2 else ''}; "
            "give more of the id"
        )
    return found[0]


def resolve_with(backend: Backend, ref: str) -> UUID:
    """:func:`resolve` on a session of its own."""
    if len(ref.replace("-", "")) == WHOLE:
        return id_range(ref)[0]
    store = backend.open_views()
    try:
        return resolve(store, ref)
    finally:
        store.close()
