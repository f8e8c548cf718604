"""The composition root: turns settings into a wired ledger.

Everything that chooses an adapter happens here, so tests can swap one in one place.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from psycopg.conninfo import conninfo_to_dict

from adapters.service.settings import Settings
from ledger.application import JobLedger
from ledger.errors import ConfigurationError

EVENTS_TABLE = "jobledger_events"
"""eventsourcing names the tables after the application (``JobLedger``)."""

if TYPE_CHECKING:
    from ledger.ports.transport import Transport
    from projections.store import ViewStore


def utc_now() -> datetime:
    """The ledger's clock: timezone-aware UTC."""
    return datetime.now(UTC)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read the settings once from ``env`` (default: the process environment)."""
    return Settings.from_env(os.environ if env is None else env)


def eventsourcing_env(settings: Settings) -> dict[str, str]:
    """The eventsourcing infrastructure variables for ``settings``."""
    if settings.database_url is None:
        settings.ledger_data_dir.mkdir(parents=True, exist_ok=True)
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(settings.sqlite_path),
            "SQLITE_LOCK_TIMEOUT": "30",
        }
    return postgres_env(settings.database_url)


def postgres_env(database_url: str) -> dict[str, str]:
    """Translate a ``postgresql://`` URL into eventsourcing's POSTGRES_* variables."""
    try:
        params = conninfo_to_dict(database_url)
    except Exception as error:
        raise ConfigurationError("DATABASE_URL", database_url, str(error)) from None
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
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


@dataclass(frozen=True)
class Container:
    """What the composition root hands to the edges (CLI, HTTP, workers)."""

    settings: Settings
    ledger: JobLedger

    def close(self) -> None:
        self.ledger.close()


def build(settings: Settings | None = None) -> Container:
    """Wire the ledger for ``settings`` (read from the environment when not given)."""
    settings = settings or load_settings()
    with _one_start_at_a_time(settings):
        ledger = JobLedger(
            eventsourcing_env(settings),
            stale_threshold_seconds=settings.stale_threshold.total_seconds(),
            retry_policy=settings.retry_policy,
            snapshot_interval=settings.ledger_snapshot_interval,
        )
    migrate(settings)
    return Container(settings=settings, ledger=ledger)


STARTUP_LOCK = 0x6A6F626C  # "jobl": serialises eventsourcing's CREATE TABLE IF NOT EXISTS


@contextmanager
def _one_start_at_a_time(settings: Settings) -> Iterator[None]:
    """On PostgreSQL, processes starting together (a compose stack) would race in
    eventsourcing's table creation ("tuple concurrently updated"); take turns."""
    if settings.database_url is None:
        yield
        return
    import psycopg

    with psycopg.connect(settings.database_url, autocommit=True, connect_timeout=10) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (STARTUP_LOCK,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (STARTUP_LOCK,))


def migrate(settings: Settings) -> list[str]:
    """Bring job-ledger's own tables up to date; return the migrations applied."""
    if settings.database_url is None:
        from adapters.sqlite.migrate import migrate as migrate_sqlite

        return [f"{m.version:04d}_{m.name}" for m in migrate_sqlite(settings.sqlite_path)]
    from adapters.postgres.migrate import migrate as migrate_postgres

    return [f"{m.version:04d}_{m.name}" for m in migrate_postgres(settings.database_url)]


def open_views(settings: Settings) -> ViewStore:
    """A session on the database holding the log and the views (the caller closes it)."""
    if settings.database_url is None:
        from adapters.sqlite.store import SQLiteViewStore

        return SQLiteViewStore(settings.sqlite_path)
    from adapters.postgres.store import PostgresViewStore

    return PostgresViewStore(settings.database_url, EVENTS_TABLE)


def build_transport(settings: Settings, env: Mapping[str, str] | None = None) -> Transport:
    """The job transport: SQS when ``SQS_QUEUE_URL`` is set, else the local queue in the
    ledger's own database (PostgreSQL or the SQLite file). ``env`` holds the standard AWS
    variables (default: the process environment). Close it with ``await t.aclose()``."""
    if settings.sqs_queue_url is not None:
        from adapters.sqs import SqsConfig, SqsTransport

        return SqsTransport(SqsConfig.from_settings(settings, os.environ if env is None else env))
    from adapters.local_queue.queue import LocalQueue

    migrate(settings)
    if settings.database_url is None:
        from adapters.sqlite.local_queue import SqliteQueueStore

        return LocalQueue(SqliteQueueStore(settings.sqlite_path))
    from adapters.postgres.local_queue import PostgresQueueStore

    return LocalQueue(PostgresQueueStore(settings.database_url))
