"""sqlite3's errors as the ledger's, in one place for the SQLite driver.

The local queue's store keeps its own translation (into the transport's errors); everything
else the driver runs for the composition root (migrations, views, API keys) goes through
:func:`translated`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from ledger.errors import StoreError, StoreUnavailable


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
