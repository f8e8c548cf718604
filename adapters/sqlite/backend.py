"""The embedded SQLite backend: eventsourcing's events, the views and job-ledger's tables
in one file (``LEDGER_DATA_DIR/ledger.sqlite3``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from adapters.sqlite.errors import translated

if TYPE_CHECKING:
    from ledger.access import KeyStore
    from ledger.ports.archive import ArchiveTables
    from ledger.ports.counters import CounterStore
    from ledger.ports.queue_store import QueueStore
    from projections.checkpoints import CheckpointStore
    from projections.store import ViewStore

EVENTS_TABLE = "stored_events"
"""eventsourcing's table on SQLite."""
LOCK_TIMEOUT_SECONDS = 30


class SqliteBackend:
    """Every store and migration in the SQLite file at ``path``."""

    name = "sqlite"
    events_table = EVENTS_TABLE
    open_without_keys = True
    """The embedded default may run without API keys (on loopback only)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def describe(self) -> str:
        return f"SQLite {self.path}"

    def eventsourcing_env(self) -> dict[str, str]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return {
            "PERSISTENCE_MODULE": "adapters.sqlite.event_recorder:LedgerSqliteFactory",
            "SQLITE_DBNAME": str(self.path),
            "SQLITE_LOCK_TIMEOUT": str(LOCK_TIMEOUT_SECONDS),
        }

    @contextmanager
    def startup_lock(self) -> Iterator[None]:
        """Nothing to serialise: SQLite's own locking covers eventsourcing's start-up."""
        yield

    def migrate(self) -> list[str]:
        from adapters.sqlite.migrate import migrate

        with translated():
            return [f"{m.version:04d}_{m.name}" for m in migrate(self.path)]

    def open_views(self) -> ViewStore:
        from adapters.sqlite.store import SQLiteViewStore

        with translated():
            return SQLiteViewStore(self.path)

    def queue_store(self) -> QueueStore:
        from adapters.sqlite.local_queue import SqliteQueueStore

        return SqliteQueueStore(self.path)

    def counter_store(self) -> CounterStore:
        from adapters.sqlite.http_api import SqliteCounters

        return SqliteCounters(self.path)

    def key_store(self) -> KeyStore:
        from adapters.sqlite.http_api import SqliteKeyStore

        return SqliteKeyStore(self.path)

    def checkpoints(self) -> CheckpointStore:
        from adapters.sqlite.checkpoints import SqliteCheckpoints

        return SqliteCheckpoints(self.path)

    def archive(self) -> ArchiveTables:
        from adapters.sqlite.archive import SqliteArchive

        return SqliteArchive(self.path)
