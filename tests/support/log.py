"""The last event id recorded in a ledger's log, for tests that check a request appended
nothing.

On PostgreSQL the recorder's ``max_notification_id`` is the *settled* head (ADR 150): it
stops before the rows of any transaction still running anywhere on the server, an
autovacuum ``ANALYZE`` included. Read before and after a refused request, it can move
although nothing was appended (a CI run saw 1, then 3, for three jobs committed before
the first read). What those tests mean is "no row was added": the highest id committed.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.postgres import PostgresApplicationRecorder


def recorded_head(recorder: Any) -> int:
    """The highest notification id committed to the log (0 for an empty log)."""
    if isinstance(recorder, PostgresApplicationRecorder):
        # eventsourcing's own statement: SELECT MAX(notification_id), no settling
        return int(PostgresApplicationRecorder.max_notification_id(recorder) or 0)
    return int(recorder.max_notification_id() or 0)
