"""The database behind a ledger, chosen once from the settings.

:func:`backend_for` is the only place that looks at ``DATABASE_URL`` to choose between
the embedded SQLite file and PostgreSQL; everything else asks the :class:`Backend` it
returned (the composition root keeps it in its container). Backends translate their
driver's errors into :class:`~ledger.errors.StoreError` and its subclasses.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from adapters.service.settings import Settings
    from ledger.access import KeyStore
    from ledger.ports.archive import ArchiveTables
    from ledger.ports.counters import CounterStore
    from ledger.ports.queue_store import QueueStore
    from projections.checkpoints import CheckpointStore
    from projections.store import ViewStore


class Backend(Protocol):
    """What the composition root needs from a database."""

    @property
    def name(self) -> str:
        """``sqlite`` or ``postgres``."""
        ...

    @property
    def events_table(self) -> str:
        """eventsourcing's table of stored events."""
        ...

    @property
    def open_without_keys(self) -> bool:
        """Whether the API may run without keys (on loopback only): the embedded default."""
        ...

    def describe(self) -> str:
        """The database in a few words, for messages."""
        ...

    def eventsourcing_env(self) -> dict[str, str]:
        """eventsourcing's infrastructure variables for the ledger's application."""
        ...

    def startup_lock(self) -> AbstractContextManager[None]:
        """Held while the ledger's application creates its tables: one process at a time."""
        ...

    def migrate(self) -> list[str]:
        """Bring job-ledger's own tables up to date; return the migrations applied."""
        ...

    def open_views(self) -> ViewStore:
        """A session on the views and the log (the caller closes it)."""
        ...

    def queue_store(self) -> QueueStore:
        """The local queue's store in this database."""
        ...

    def counter_store(self) -> CounterStore:
        """The rate limiter's counters in this database."""
        ...

    def key_store(self) -> KeyStore:
        """The API keys in this database."""
        ...

    def checkpoints(self) -> CheckpointStore:
        """A session on the views' checkpoints in this database (the caller closes it)."""
        ...

    def archive(self) -> ArchiveTables:
        """A session on the archive's tables in this database (the caller closes it)."""
        ...


def backend_for(settings: Settings) -> Backend:
    """PostgreSQL at ``DATABASE_URL`` when it is set, else the embedded SQLite file under
    ``LEDGER_DATA_DIR``."""
    if settings.database_url is None:
        from adapters.sqlite.backend import SqliteBackend

        return SqliteBackend(settings.sqlite_path)
    from adapters.postgres.backend import PostgresBackend

    return PostgresBackend(settings.database_url)
