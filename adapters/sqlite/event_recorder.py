"""The ledger's event recorders on SQLite: eventsourcing's, whose errors are the ledger's.

A call that finds the file locked past ``SQLITE_LOCK_TIMEOUT``, or cannot open it, raises
:class:`~ledger.errors.StoreUnavailable`; any other failure of the store a
:class:`~ledger.errors.StoreError`; a version conflict stays eventsourcing's
``RecordConflictError``, which the ledger handles itself (ADR 75).
:class:`LedgerSqliteFactory` gives eventsourcing these recorders (``PERSISTENCE_MODULE``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from eventsourcing.persistence import (
    ConnectionUnavailableError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    PersistenceError,
)
from eventsourcing.sqlite import SQLiteAggregateRecorder, SQLiteApplicationRecorder, SQLiteFactory

from ledger.errors import StoreError, StoreUnavailable

F = TypeVar("F", bound=Callable[..., Any])


def translated_call(method: F) -> F:
    """``method`` raising the ledger's errors instead of eventsourcing's."""

    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except IntegrityError:
            raise  # a version conflict: the ledger re-reads and decides again
        except (OperationalError, InterfaceError, ConnectionUnavailableError) as error:
            raise StoreUnavailable(f"SQLite: {error}") from error
        except PersistenceError as error:
            raise StoreError(f"SQLite: {error}") from error

    return cast(F, call)


class LedgerSqliteRecorder(SQLiteApplicationRecorder):
    """The events' recorder."""

    insert_events = translated_call(SQLiteApplicationRecorder.insert_events)
    select_events = translated_call(SQLiteApplicationRecorder.select_events)
    select_notifications = translated_call(SQLiteApplicationRecorder.select_notifications)
    max_notification_id = translated_call(SQLiteApplicationRecorder.max_notification_id)


class LedgerSqliteSnapshotRecorder(SQLiteAggregateRecorder):
    """The snapshots' recorder."""

    insert_events = translated_call(SQLiteAggregateRecorder.insert_events)
    select_events = translated_call(SQLiteAggregateRecorder.select_events)


class LedgerSqliteFactory(SQLiteFactory):
    """eventsourcing's factory with the ledger's recorders."""

    application_recorder_class = LedgerSqliteRecorder
    aggregate_recorder_class = LedgerSqliteSnapshotRecorder
