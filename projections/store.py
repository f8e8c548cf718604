"""What the runner, rebuild and verify need from a database (PostgreSQL or SQLite).

One store is one session (connection) and is used from one thread. Writes happen inside
:meth:`ViewStore.transaction`; the view's position is compared-and-set in the same
transaction as the rows (:meth:`ViewStore.advance`), which is what makes a view exactly
once even if two runners ever fed it at the same time. The lock (:meth:`try_lock`) only
keeps a second runner from doing that work in vain.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from projections.events import RawRow
from projections.model import Key, PageState, Row, Table, View
from projections.queries import QueryRow

LIVE = ""
"""Table-name suffix of the live tables."""
SHADOW = "__rebuild"
"""Suffix of the tables a rebuild builds before swapping them in."""
SCRATCH = "__verify"
"""Suffix of the tables verify builds and compares with the live ones."""


@dataclass(frozen=True, slots=True)
class Tracking:
    """Where a view is in the log."""

    view: str
    position: int
    generation: int
    """Bumped when a rebuild swaps new tables in: a runner's cached rows are then void."""
    owner: str | None = None
    error: str | None = None
    updated_at: datetime | None = None


class ViewStore(Protocol):
    """A database holding the event log and the views."""

    backend: str

    # -- the log ------------------------------------------------------------------------

    def head(self) -> int:
        """The position of the last event in the log (0 when empty)."""
        ...

    def read_events(self, after: int, limit: int, upto: int | None = None) -> list[RawRow]:
        """Up to ``limit`` events after position ``after`` (and not after ``upto``)."""
        ...

    def stream_version_at(self, originator_id: UUID, position: int) -> int:
        """The version of the aggregate's last event at or before ``position`` (0 if none)."""
        ...

    def wait_for_events(self, timeout: float) -> None:
        """Return when new events may have been appended, or after ``timeout`` seconds."""
        ...

    # -- locks ------------------------------------------------------------------------

    def try_lock(self, name: str) -> bool:
        """Take the named lock for this session if free; released on unlock or death."""
        ...

    def unlock(self, name: str) -> None: ...

    def is_locked(self, name: str) -> bool:
        """Whether some session (this one or another) holds the named lock now."""
        ...

    # -- tracking ---------------------------------------------------------------------

    def tracking(self, view: str) -> Tracking:
        """The view's tracking row (position 0, generation 0 if it has none yet)."""
        ...

    def all_tracking(self) -> list[Tracking]: ...

    def record_error(self, view: str, error: str | None, owner: str | None) -> None:
        """Record (or clear) the error that stopped the view, in its own transaction."""
        ...

    # -- writing ---------------------------------------------------------------------

    def transaction(self) -> AbstractContextManager[None]:
        """A write transaction; everything below happens inside one."""
        ...

    def advance(self, expected: Tracking, position: int, owner: str) -> bool:
        """Move the view from ``expected`` to ``position``; False if it is not there."""
        ...

    def lock_tracking(self, view: str) -> Tracking:
        """Lock the view's tracking row until the transaction ends (a swap)."""
        ...

    def set_tracking(self, view: str, position: int, generation: int) -> None: ...

    def load(self, table: Table, suffix: str, keys: Collection[Key]) -> dict[Key, Row]:
        """The rows of a state table with these keys (missing keys are absent)."""
        ...

    def apply(self, view: View, suffix: str, state: PageState) -> None:
        """Write what ``state`` collected to the view's tables (with ``suffix``)."""
        ...

    # -- rebuild and verify ----------------------------------------------------------

    def create_tables(self, view: View, suffix: str) -> None:
        """Create the view's tables with ``suffix``, dropping any left from before."""
        ...

    def drop_tables(self, view: View, suffix: str) -> None: ...

    def replace_tables(self, view: View, suffix: str) -> None:
        """Within the transaction: put the ``suffix`` tables in place of the live ones."""
        ...

    def snapshot(self) -> AbstractContextManager[None]:
        """A read-only transaction that sees one moment of the database throughout."""
        ...

    def rows(self, table: Table, suffix: str) -> Iterator[tuple[Any, ...]]:
        """Every row of the table, ordered by its key, values normalised."""
        ...

    def count(self, table: Table, suffix: str) -> int: ...

    # -- reading ------------------------------------------------------------------------

    def query(self, name: str, params: Mapping[str, Any]) -> list[QueryRow]:
        """Run a named read-side query (see projections/queries/); rows by column name."""
        ...

    def close(self) -> None: ...
