"""psycopg's errors as the ledger's, in one place for the PostgreSQL driver.

Every public method of the driver's stores runs inside one of the two translators:
:func:`translated` (start-up, migrations, views, the limiter's counters, API keys: the
:class:`StoreError` family) and :func:`queue_translated` (the local queue's store: the
transport's errors, as :class:`~ledger.ports.queue_store.QueueStore` promises).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import psycopg.errors
from psycopg_pool import PoolTimeout

from ledger.errors import (
    StoreError,
    StoreUnavailable,
    TransportRequestFailed,
    TransportTimeout,
    TransportUnavailable,
)


@contextmanager
def translated() -> Iterator[None]:
    """Raise psycopg's errors as :class:`StoreUnavailable` (the server did not answer) or
    :class:`StoreError` (it refused), with the driver's error as the cause."""
    try:
        yield
    except (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout) as error:
        raise StoreUnavailable(f"PostgreSQL: {error}") from error
    except psycopg.Error as error:
        raise StoreError(f"PostgreSQL: {error}") from error


@contextmanager
def queue_translated() -> Iterator[None]:
    """Raise psycopg's errors as the transport's: :class:`TransportTimeout` (a statement
    timed out), :class:`TransportUnavailable` (the server did not answer) or
    :class:`TransportRequestFailed`, with the driver's error as the cause."""
    try:
        yield
    except psycopg.errors.QueryCanceled as error:
        raise TransportTimeout(f"local queue on PostgreSQL: {error}") from error
    except (psycopg.OperationalError, PoolTimeout) as error:
        raise TransportUnavailable(f"local queue on PostgreSQL: {error}") from error
    except psycopg.Error as error:
        raise TransportRequestFailed(f"local queue on PostgreSQL: {error}") from error
