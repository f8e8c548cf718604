"""The composition root: turns settings into a wired ledger.

Everything that chooses an adapter happens here, so tests can swap one in one place: the
database once (:func:`~adapters.service.backend.backend_for`, kept in the
:class:`Container`), the transport once (:func:`sqs_config`: SQS or the local queue).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from eventsourcing.persistence import InterfaceError, OperationalError, PersistenceError

from adapters.service.archive_reader import ArchiveReader, segment_store
from adapters.service.backend import Backend, backend_for
from adapters.service.settings import Settings
from ledger.application import JobLedger
from ledger.errors import StoreError, StoreUnavailable
from ledger.ports.queue_store import DEFAULT_QUEUE

if TYPE_CHECKING:
    from adapters.sqs import SqsConfig
    from ledger.ports.transport import Transport


def utc_now() -> datetime:
    """The ledger's clock: timezone-aware UTC."""
    return datetime.now(UTC)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read the settings once from ``env`` (default: the process environment)."""
    return Settings.from_env(os.environ if env is None else env)


@dataclass(frozen=True)
class Container:
    """What the composition root hands to the edges (CLI, HTTP, workers)."""

    settings: Settings
    backend: Backend
    ledger: JobLedger

    def close(self) -> None:
        if self.ledger.archive is not None:
            self.ledger.archive.close()
        self.ledger.close()


def build(settings: Settings | None = None, backend: Backend | None = None) -> Container:
    """Wire the ledger for ``settings`` (read from the environment when not given) on
    ``backend`` (default: the one the settings name)."""
    settings = settings or load_settings()
    backend = backend or backend_for(settings)
    with backend.startup_lock(), eventsourcing_errors_translated():
        ledger = JobLedger(
            backend.eventsourcing_env(),
            stale_threshold=settings.stale_threshold,
            retry_policy=settings.retry_policy,
            snapshot_interval=settings.ledger_snapshot_interval,
            pause=time.sleep,  # between tries after version conflicts
        )
    backend.migrate()
    ledger.archive = ArchiveReader(backend, segment_store(settings))  # ADR 110
    if backend.name == "postgres" and sqs_config(settings, {}) is None:
        ledger.outbox = DEFAULT_QUEUE  # the local queue's rows with their events (ADR 151)
    return Container(settings=settings, backend=backend, ledger=ledger)


@contextmanager
def eventsourcing_errors_translated() -> Iterator[None]:
    """eventsourcing's persistence errors (its recorders wrap the drivers') as the
    ledger's :class:`StoreError` family, with theirs as the cause."""
    try:
        yield
    except (OperationalError, InterfaceError) as error:
        raise StoreUnavailable(f"{type(error).__name__}: {error}") from error
    except PersistenceError as error:
        raise StoreError(f"{type(error).__name__}: {error}") from error


def sqs_config(settings: Settings, env: Mapping[str, str] | None = None) -> SqsConfig | None:
    """The SQS transport's configuration when ``SQS_QUEUE_URL`` is set, else ``None`` (the
    local queue in the ledger's database). ``env`` holds the standard AWS variables
    (default: the process environment). The one place the transport is chosen."""
    if settings.sqs_queue_url is None:
        return None
    from adapters.sqs import SqsConfig

    return SqsConfig.from_env(
        settings.sqs_queue_url, settings.sqs_dlq_url, os.environ if env is None else env,
        queue_urls=dict(settings.sqs_queue_urls),
        priority_urls=settings.sqs_priority_queue_urls,
    )


def build_transport(
    settings: Settings, backend: Backend, env: Mapping[str, str] | None = None
) -> Transport:
    """The job transport (see :func:`sqs_config`); the local queue lives in ``backend``.
    Close it with ``await t.aclose()``."""
    config = sqs_config(settings, env)
    if config is not None:
        from adapters.sqs import SqsTransport

        return SqsTransport(config)
    from adapters.local_queue.queue import LocalQueue

    backend.migrate()
    return LocalQueue(backend.queue_store())


def describe_transport(settings: Settings, backend: Backend) -> str:
    """The transport :func:`build_transport` opens, in a few words, for messages."""
    config = sqs_config(settings, {})
    if config is not None:
        return f"SQS {config.queue_url}"
    return f"the local queue in {backend.describe()}"
