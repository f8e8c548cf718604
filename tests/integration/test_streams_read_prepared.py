"""The recorder's read of many jobs (``select_streams``: the scheduler's releases, the
claims' prefetch) ends its transaction with a COMMIT, not a ROLLBACK: psycopg answers a
rollback with ``DEALLOCATE ALL`` (one more round trip), which also throws away every
statement prepared on that pooled connection (the append's included), so the next call of
each is parsed and planned again (ADR 175)."""

from __future__ import annotations

import psycopg
import pytest
from psycopg.rows import tuple_row

from adapters.postgres.backend import postgres_env
from adapters.service.bootstrap import utc_now
from ledger.application import JobLedger
from ledger.commands import EnqueueJob
from tests.integration.test_event_recorder import recorder_of

pytestmark = pytest.mark.postgres

PREPARED = "SELECT statement FROM pg_prepared_statements"


def test_reading_streams_keeps_the_connections_prepared_statements(postgres_url: str) -> None:
    env = postgres_env(postgres_url) | {"POSTGRES_POOL_SIZE": "1", "POSTGRES_MAX_OVERFLOW": "0"}
    ledger = JobLedger(env)
    try:
        recorder = recorder_of(ledger)
        jobs = [r.job_id for r in ledger.execute_batch(  # type: ignore[union-attr]
            [EnqueueJob(customer_id="c") for _ in range(3)], utc_now())]
        for _ in range(2):
            assert set(recorder.select_streams(jobs, None)) == set(jobs)
        with recorder.datastore.get_connection() as conn:  # the pool's one connection
            with conn.cursor(row_factory=tuple_row) as cursor:
                prepared = [str(row[0]) for row in cursor.execute(PREPARED)]
            conn.rollback()
    finally:
        ledger.close()
    assert any("append_new_jobs" in text for text in prepared), prepared  # ADR 212
    assert any("ORDER BY originator_id, originator_version" in text for text in prepared)


def test_a_rollback_deallocates_psycopgs_prepared_statements(postgres_url: str) -> None:
    """What the test above guards against, shown on a bare connection."""
    with psycopg.connect(postgres_url) as conn:
        conn.execute("SELECT 1 + %s", (1,), prepare=True)
        conn.commit()
        assert len(conn.execute(PREPARED).fetchall()) == 1
        conn.rollback()
        assert conn.execute(PREPARED).fetchall() == []
