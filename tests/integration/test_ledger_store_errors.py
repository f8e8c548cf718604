"""The ledger's event store on PostgreSQL, seen from the edges: its errors are the
ledger's, and starting it leaves the server's log clean.

- A ``JobLedger`` call while the database is down (or the SQLite file stays locked) raises
  :class:`~ledger.errors.StoreUnavailable` (translated once, at the recorders), not
  eventsourcing's ``OperationalError`` that every edge had to know.
- Every start used to write two ``ERROR: type "stored_event_uuid" already exists`` lines
  into the server's log (eventsourcing creates the type and swallows the error): the
  recorders check ``pg_type`` first.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from adapters.service.bootstrap import Container, build
from adapters.service.settings import Settings
from ledger.commands import EnqueueJob
from ledger.errors import StoreUnavailable
from tests.support.pg import LocalCluster, PostgresServer

pytestmark = pytest.mark.postgres


def error_lines(cluster: LocalCluster) -> list[str]:
    return [
        line for line in cluster.logfile.read_text(errors="replace").splitlines()
        if "ERROR:" in line
    ]


def test_starting_the_ledger_writes_no_error_into_the_server_log(
    postgres_server: PostgresServer, postgres_url: str, tmp_path: Path
) -> None:
    if not isinstance(postgres_server, LocalCluster):
        pytest.skip(f"cannot read the log of {postgres_server!r}")
    settings = Settings(database_url=postgres_url, ledger_data_dir=tmp_path)
    before = error_lines(postgres_server)
    for _ in range(2):  # the first start creates the tables, the second finds them
        build(settings).close()
    assert error_lines(postgres_server)[len(before):] == []


def test_a_ledger_call_while_the_database_is_down_raises_store_unavailable(
    postgres_server: PostgresServer, postgres_url: str, tmp_path: Path
) -> None:
    if not postgres_server.supports_restart:
        pytest.skip(f"cannot stop {postgres_server!r}")
    container = build(Settings(database_url=postgres_url, ledger_data_dir=tmp_path))
    now = datetime.now(UTC)
    try:
        container.ledger.execute(EnqueueJob(customer_id="acme"), now)
        postgres_server.stop("fast")
        try:
            with pytest.raises(StoreUnavailable):
                container.ledger.execute(EnqueueJob(customer_id="acme"), now)
            with pytest.raises(StoreUnavailable):
                container.ledger.get_job(uuid4())
        finally:
            postgres_server.start()
        container.ledger.execute(EnqueueJob(customer_id="acme"), now)  # and back again
    finally:
        container.close()


def test_a_ledger_call_on_a_locked_sqlite_store_raises_store_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from contextlib import contextmanager

    from eventsourcing.persistence import OperationalError

    container = build(Settings(ledger_data_dir=tmp_path))
    try:
        outcome = container.ledger.execute(EnqueueJob(customer_id="acme"), datetime.now(UTC))
        container.ledger.forget()

        @contextmanager
        def locked(**_: object) -> Iterator[None]:
            error = OperationalError("database is locked")  # past SQLITE_LOCK_TIMEOUT
            if error:
                raise error
            yield

        for datastore in {id(r.datastore): r.datastore for r in recorders(container)}.values():
            monkeypatch.setattr(datastore, "transaction", locked)
        with pytest.raises(StoreUnavailable, match="database is locked"):
            container.ledger.get_job(outcome.job_id)
        with pytest.raises(StoreUnavailable):
            container.ledger.execute(EnqueueJob(customer_id="acme"), datetime.now(UTC))
    finally:
        monkeypatch.undo()
        container.close()


def recorders(container: Container) -> list[Any]:
    ledger = container.ledger
    found: list[Any] = [ledger.recorder]
    if ledger.snapshots is not None:
        found.append(ledger.snapshots.recorder)
    return found
