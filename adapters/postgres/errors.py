"""psycopg's errors as the ledger's, in one place for the PostgreSQL driver.

The local queue's store keeps its own translation (into the transport's errors); everything
else the driver runs for the composition root (start-up, migrations, views, API keys)
goes through :func:`translated`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg_pool import PoolTimeout

from ledger.errors import StoreError, StoreUnavailable


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
