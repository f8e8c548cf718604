"""sqlite3's errors as the ledger's, in one place for the SQLite driver.

Every public method of the driver's stores runs inside one of the two translators:
:func:`translated` (migrations, views, the limiter's counters, API keys: the
:class:`StoreError` family) and :func:`queue_translated` (the local queue's store: the
transport's errors, as :class:`~ledger.ports.queue_store.QueueStore` promises).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from ledger.errors import (
    StoreError,
    StoreUnavailable,
    TransportRequestFailed,
    TransportUnavailable,
)


@contextmanager
def translated() -> Iterator[None]:
    """Raise sqlite3's errors as :class:`StoreUnavailable` (the file cannot be opened, or
    stayed locked) or :class:`StoreError`, with the driver's error as the cause."""
    try:
        yield
    except sqlite3.OperationalError as error:
        raise StoreUnavailable(f"SQLite: {error}") from error
    except sqlite3.Error as error:
        raise StoreError(f"SQLite: {error}") from error


@contextmanager
def queue_translated() -> Iterator[None]:
    """Raise sqlite3's errors as the transport's: :class:`TransportUnavailable` (the file
    cannot be opened, or stayed locked) or :class:`TransportRequestFailed`, with the
    driver's error as the cause."""
    try:
        yield
    except sqlite3.OperationalError as error:
        raise TransportUnavailable(f"local queue on SQLite: {error}") from error
    except sqlite3.Error as error:
        raise TransportRequestFailed(f"local queue on SQLite: {error}") from error
