"""The PostgreSQL backend: eventsourcing's recorder, the views and job-ledger's tables in
the database at one URL (``DATABASE_URL``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import psycopg
from psycopg.conninfo import conninfo_to_dict

from adapters.postgres.errors import translated
from ledger.errors import ConfigurationError

if TYPE_CHECKING:
    from ledger.access import KeyStore
    from ledger.ports.archive import ArchiveTables
    from ledger.ports.counters import CounterStore
    from ledger.ports.queue_store import QueueStore
    from projections.checkpoints import CheckpointStore
    from projections.store import ViewStore

EVENTS_TABLE = "jobledger_events"
"""eventsourcing names the tables after the application (``JobLedger``)."""

STARTUP_LOCK = 0x6A6F626C  # "jobl": serialises eventsourcing's CREATE TABLE IF NOT EXISTS
TAKE_STARTUP_LOCK = "SELECT pg_advisory_lock(%s)"
RELEASE_STARTUP_LOCK = "SELECT pg_advisory_unlock(%s)"
CONNECT_TIMEOUT_SECONDS = 10


def postgres_env(database_url: str) -> dict[str, str]:
    """Translate a ``postgresql://`` URL into eventsourcing's POSTGRES_* variables."""
    try:
        params = conninfo_to_dict(database_url)
    except Exception as error:
        raise ConfigurationError("DATABASE_URL", database_url, str(error)) from None
    return {
        "PERSISTENCE_MODULE": "adapters.postgres.event_recorder:LedgerPostgresFactory",
        "APPLICATION_RECORDER_TOPIC": "adapters.postgres.event_recorder:LedgerEventRecorder",
        "POSTGRES_DBNAME": str(params.get("dbname") or params.get("user") or "postgres"),
        "POSTGRES_HOST": str(params.get("host") or "localhost"),
        "POSTGRES_PORT": str(params.get("port") or "5432"),
        "POSTGRES_USER": str(params.get("user") or "postgres"),
        "POSTGRES_PASSWORD": str(params.get("password") or ""),
        "POSTGRES_CONNECT_TIMEOUT": "5",
        "POSTGRES_POOL_SIZE": "5",
        "POSTGRES_MAX_OVERFLOW": "10",
        "POSTGRES_PRE_PING": "n",
        "POSTGRES_LOCK_TIMEOUT": "10",
    }


class PostgresBackend:
    """Every store and migration on the PostgreSQL database at ``url``."""

    name = "postgres"
    events_table = EVENTS_TABLE
    open_without_keys = False
    """A shared database is never served without API keys."""

    def __init__(self, url: str) -> None:
        self.url = url

    def describe(self) -> str:
        return "PostgreSQL"

    def eventsourcing_env(self) -> dict[str, str]:
        return postgres_env(self.url)

    @contextmanager
    def startup_lock(self) -> Iterator[None]:
        """Processes starting together (a compose stack) would race in eventsourcing's
        table creation ("tuple concurrently updated"): they take turns."""
        with translated(), psycopg.connect(
            self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS
        ) as conn:
            conn.execute(TAKE_STARTUP_LOCK, (STARTUP_LOCK,))
            try:
                yield
            finally:
                conn.execute(RELEASE_STARTUP_LOCK, (STARTUP_LOCK,))

    def migrate(self) -> list[str]:
        from adapters.postgres.migrate import migrate

        with translated():
            return [f"{m.version:04d}_{m.name}" for m in migrate(self.url)]

    def open_views(self) -> ViewStore:
        from adapters.postgres.store import PostgresViewStore

        with translated():
            return PostgresViewStore(self.url, EVENTS_TABLE)

    def queue_store(self) -> QueueStore:
        from adapters.postgres.local_queue import PostgresQueueStore
        from adapters.postgres.log_order import log_channel

        # its messages come with the log's appends (ADR 151): their NOTIFY wakes receivers
        return PostgresQueueStore(self.url, channel=log_channel(EVENTS_TABLE))

    def counter_store(self) -> CounterStore:
        from adapters.postgres.http_api import PostgresCounters

        return PostgresCounters(self.url)

    def key_store(self) -> KeyStore:
        from adapters.postgres.http_api import PostgresKeyStore

        return PostgresKeyStore(self.url)

    def checkpoints(self) -> CheckpointStore:
        from adapters.postgres.checkpoints import PostgresCheckpoints

        return PostgresCheckpoints(self.url)

    def archive(self) -> ArchiveTables:
        from adapters.postgres.archive import PostgresArchive

        return PostgresArchive(self.url)
