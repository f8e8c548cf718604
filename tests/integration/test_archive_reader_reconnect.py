"""Regression (issue: serve answered every POST /jobs 503 after a PostgreSQL restart): the
archive reader that the application asks whether a job is archived kept the one session
it opened on first use, and a restart left it closed for good ("the connection is
closed"). Like the other pools (ADR 75) it now discards a dead session and runs the
lookup once more on a new one.

The test ends the reader's session from the server (``pg_terminate_backend``, what a
restart does to every session) instead of restarting the session's shared cluster.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import psycopg
import pytest

from adapters.service.bootstrap import Container, build, utc_now
from adapters.service.settings import Settings
from ledger.commands import EnqueueJob

pytestmark = pytest.mark.postgres


@pytest.fixture
def container(postgres_url: str, tmp_path: Path) -> Iterator[Container]:
    wired = build(Settings(ledger_data_dir=tmp_path / "data", database_url=postgres_url))
    yield wired
    wired.close()


def end_every_other_session(url: str) -> int:
    """Terminate every session of this test's database but this one (a restart's effect)."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return len(rows)


def test_enqueue_and_archive_lookups_survive_their_sessions_ending(
    container: Container, postgres_url: str
) -> None:
    ledger = container.ledger
    assert ledger.archive is not None
    ledger.execute(EnqueueJob(customer_id="acme"), utc_now())
    assert not ledger.archive.is_archived(uuid4())  # the reader's session is open
    assert end_every_other_session(postgres_url) >= 1
    assert not ledger.archive.is_archived(uuid4())
    enqueued = ledger.execute(EnqueueJob(customer_id="acme", idempotency_key="k1"), utc_now())
    assert ledger.execute(
        EnqueueJob(customer_id="acme", idempotency_key="k1"), utc_now()
    ).job_id == enqueued.job_id
