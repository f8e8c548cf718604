"""Deleting finished messages on PostgreSQL looks each one up by its key, however many
messages wait in the queue.

The local queue's table empties and fills within seconds, so its statistics are always
stale; with a join on the queue's name the planner walked every waiting message through a
ready index for each delete (issue 19: a third of PostgreSQL's time per end-to-end job,
and 10,000 entries per delete in a burn-down). The counts are the deleting transaction's
own statistics: nothing is timed.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from adapters.postgres.local_queue import SQL, PostgresQueueStore
from adapters.postgres.migrate import migrate
from ledger.ports.queue_store import NewMessage

pytestmark = pytest.mark.postgres

TUPLES_READ = (
    "SELECT coalesce(sum(pg_stat_get_xact_tuples_returned(c.oid)), 0) FROM pg_class c "
    "WHERE c.oid = 'local_queue_messages'::regclass OR c.oid IN "
    "(SELECT indexrelid FROM pg_index WHERE indrelid = 'local_queue_messages'::regclass)"
)
"""Index and table entries the local queue's statements read in this transaction (also
``test_claims_cost.py``)."""
WAITING = 5000


def message(n: int) -> NewMessage:
    return NewMessage(message_id=str(uuid.uuid4()), job_id=str(uuid.uuid4()), attempt=0,
                      body=f'{{"n": {n}}}', sent_at=0.0, visible_at=float(n))  # fmt: skip


def delete_counted(url: str, items: list[tuple[int, str]]) -> tuple[list[int], int]:
    """The seqs ``delete_many`` deleted and the entries it read, in one transaction."""
    params: dict[str, Any] = {"queue": "q", "seqs": [s for s, _ in items],
                              "receipts": [r for _, r in items]}  # fmt: skip
    with psycopg.connect(url) as conn, conn.transaction():
        before = conn.execute(TUPLES_READ).fetchall()[0][0]
        deleted = [row[0] for row in conn.execute(SQL["delete_many"], params).fetchall()]
        after = conn.execute(TUPLES_READ).fetchall()[0][0]
    return deleted, int(after) - int(before)


def test_a_delete_reads_its_own_rows_not_the_waiting_queue(postgres_url: str) -> None:
    migrate(postgres_url)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("ANALYZE local_queue_messages")  # statistics of an empty queue
    store = PostgresQueueStore(postgres_url)
    try:
        store.put("q", [message(n) for n in range(WAITING)])
        claimed = store.claim("q", now=10.0, limit=3, visible_until=100.0, max_receives=5)
        items = [(m.seq, m.receipt or "") for m in claimed]
        stale = (claimed[0].seq, "not-the-receipt")
        deleted, read = delete_counted(postgres_url, [*items[1:], stale])
        assert sorted(deleted) == sorted(s for s, _ in items[1:])
        assert read <= 20, f"deleting 3 messages read {read} entries of {WAITING} waiting"
        assert store.delete_many("q", items) == [True, False, False]
    finally:
        store.close()
