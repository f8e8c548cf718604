"""What the ledger's recorders on PostgreSQL add to eventsourcing's (ADR 75).

- **Dead pooled connections are replaced, once.** eventsourcing retries a failed call ten
  times, 0.2 s apart, on whatever the pool hands out next: after a server restart every
  idle connection is dead, and a pool of fifteen can outlast the ten tries; while the
  server is down a call waits ten pool timeouts. :func:`reconnecting` runs the call
  itself; if the server did not answer it checks the pool (the idle connections that died
  are discarded and replaced) and runs it once more.
- **Errors are the ledger's.** A call that still finds no server raises
  :class:`~ledger.errors.StoreUnavailable`, so the edges (HTTP, CLI, workers, the parts)
  know no eventsourcing class.
- **Types are created only when missing.** eventsourcing runs ``CREATE TYPE`` at every
  start and swallows the ``DuplicateObject`` error, which the server logs (two
  ``ERROR: type "stored_event_uuid" already exists`` lines per start): the recorders
  check ``pg_type`` first.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar, cast

from eventsourcing.persistence import (
    ConnectionUnavailableError,
    InterfaceError,
    OperationalError,
)
from eventsourcing.postgres import PostgresAggregateRecorder, PostgresDatastore
from psycopg.errors import DuplicateObject

from ledger.errors import StoreUnavailable

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

JOINED = threading.local()
"""``JOINED.conn``: the connection of a caller's open transaction that this thread's
appends join (``LedgerEventRecorder.joined``, ADR 155); ``None`` outside one."""

SELECT_TYPE = (
    "SELECT 1 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
    "WHERE n.nspname = %s AND t.typname = %s"
)
NO_SERVER = (OperationalError, InterfaceError, ConnectionUnavailableError)
"""eventsourcing's errors for a server that did not answer (its pool's and psycopg's)."""


def reconnecting(method: F) -> F:
    """``method`` without eventsourcing's retry loop: run it; if the server did not
    answer, discard the pool's dead connections and run it once more; raise
    :class:`StoreUnavailable` if it still does not."""
    inner = inspect.unwrap(method)

    @functools.wraps(inner)
    def call(self: PostgresAggregateRecorder, *args: Any, **kwargs: Any) -> Any:
        try:
            return inner(self, *args, **kwargs)
        except NO_SERVER as error:
            log.info("PostgreSQL: %s; replacing dead connections, trying once more", error)
            discard_dead_connections(self.datastore)
        try:
            return inner(self, *args, **kwargs)
        except NO_SERVER as error:
            raise StoreUnavailable(f"PostgreSQL: {error}") from error

    return cast(F, call)


def discard_dead_connections(datastore: PostgresDatastore) -> None:
    """Check every idle connection of the pool: the dead ones are closed and replaced."""
    try:
        datastore.pool.check()
    except Exception as error:  # a pool that is not open yet, or closing
        log.debug("checking the pool failed: %s", error)


class CatalogCheckedTypes(PostgresAggregateRecorder):
    """``create_table`` that runs eventsourcing's ``CREATE TYPE`` only when ``pg_type``
    does not have the type yet."""

    def create_table(self) -> None:
        creates_type = [s for s in self.sql_create_statements if "CREATE TYPE" in s.as_string()]
        if creates_type and not self._type_exists():
            for statement in creates_type:  # another process may win the race: fine
                with (
                    self.datastore.transaction(commit=True) as curs,
                    contextlib.suppress(DuplicateObject),
                ):
                    curs.execute(statement, prepare=False)
        with self.datastore.transaction(commit=True) as curs:
            self._create_table(curs)
        self.datastore.register_type_adapters()

    def _type_exists(self) -> bool:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(SELECT_TYPE, (self.datastore.schema, self.stored_event_type_name))
            return curs.fetchone() is not None


class LedgerSnapshotRecorder(CatalogCheckedTypes):
    """The snapshots' recorder: eventsourcing's, with the additions above. Within a
    joined transaction (ADR 155) it writes nothing: a snapshot committed on its own
    connection could outlive the events it folds if that transaction rolled back, and a
    snapshot is only an optimisation (the next save past the interval takes it)."""

    _insert = reconnecting(PostgresAggregateRecorder.insert_events)

    def insert_events(self, stored_events: Any, **kwargs: Any) -> Any:
        if getattr(JOINED, "conn", None) is not None:
            return []
        return self._insert(stored_events, **kwargs)

    select_events = reconnecting(PostgresAggregateRecorder.select_events)
