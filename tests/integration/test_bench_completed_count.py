"""The benchmarks' count of ``Completed`` events (bench/end_to_end.py ``CompletedCount``):
each poll reads only the rows past the settled head of the poll before, and still counts
an event whose transaction commits after a later one was already visible."""

from __future__ import annotations

from uuid import uuid4

import psycopg
import pytest
from eventsourcing.persistence import StoredEvent

from adapters.postgres.backend import postgres_env
from adapters.postgres.event_recorder import LedgerEventRecorder
from bench.end_to_end import COMPLETED, CompletedCount, head_of
from ledger.application import JobLedger

pytestmark = pytest.mark.postgres


def completed() -> StoredEvent:
    return StoredEvent(originator_id=uuid4(), originator_version=1, topic=COMPLETED, state=b"{}")


def test_an_event_committed_late_is_counted_and_old_rows_are_not_read_again(
    postgres_url: str,
) -> None:
    ledger = JobLedger(postgres_env(postgres_url))
    try:
        recorder = ledger.recorder
        assert isinstance(recorder, LedgerEventRecorder)
        with psycopg.connect(postgres_url, autocommit=True) as poll, \
                psycopg.connect(postgres_url) as slow:  # fmt: skip
            count = CompletedCount(poll, head_of(poll))
            recorder.insert_events([completed() for _ in range(3)])
            assert count() == 3
            low = count.low
            with recorder.joined(slow):  # appended in a transaction left open
                recorder.insert_events([completed()])
            recorder.insert_events([completed()])  # a later id, committed first
            assert count() == 3  # the head stops below the open transaction's row
            slow.commit()
            assert count() == 5
            assert count.low > low  # the next poll starts past what it counted
            recorder.insert_events([StoredEvent(uuid4(), 1, "tests:Other", b"{}")])
            assert count() == 5
    finally:
        ledger.close()
