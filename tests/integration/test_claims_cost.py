"""The batched claims' statements on PostgreSQL (ADR 155) look each message up by its
key, however many messages wait in the queue.

The local queue's table empties and fills within seconds, so its statistics always say
it is empty; written as ``seq = ANY(...) AND queue_name = ... AND dead_at IS NULL``, the
receive after a claim and the delete of reported messages were planned on a ready index
and walked every waiting message (issue 19: the delete was a third of PostgreSQL's time
per end-to-end job, 1.3 ms a call, and the receive another 14%; the single-message
store's delete had the same plan, fixed before, test_local_queue_delete_cost.py). The
counts are the transaction's own statistics: nothing is timed.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from adapters.postgres.claims import SQL
from adapters.postgres.local_queue import PostgresQueueStore
from adapters.postgres.migrate import migrate
from ledger.ports.queue_store import NewMessage
from tests.integration.test_local_queue_delete_cost import TUPLES_READ

pytestmark = pytest.mark.postgres

WAITING = 5000
NOW = 10_000.0
"""Every message is visible by then."""


def message(n: int) -> NewMessage:
    return NewMessage(message_id=str(uuid.uuid4()), job_id=str(uuid.uuid4()), attempt=0,
                      body=f'{{"n": {n}}}', sent_at=0.0, visible_at=float(n))  # fmt: skip


def counted(url: str, name: str, params: dict[str, Any]) -> tuple[list[tuple[Any, ...]], int]:
    """The rows statement ``name`` returned and the entries it read, in one transaction."""
    with psycopg.connect(url) as conn, conn.transaction():
        before = conn.execute(TUPLES_READ).fetchall()[0][0]
        rows = conn.execute(SQL[name], params).fetchall() if "RETURNING" in SQL[name] else []
        if "RETURNING" not in SQL[name]:
            conn.execute(SQL[name], params)
        after = conn.execute(TUPLES_READ).fetchall()[0][0]
    return rows, int(after) - int(before)


@pytest.fixture
def waiting(postgres_url: str) -> list[int]:
    """``WAITING`` visible messages on queue ``q``, the statistics of an empty table."""
    migrate(postgres_url)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("ANALYZE local_queue_messages")
    store = PostgresQueueStore(postgres_url)
    try:
        store.put("q", [message(n) for n in range(WAITING)])
    finally:
        store.close()
    with psycopg.connect(postgres_url) as conn:
        return [r[0] for r in conn.execute("SELECT seq FROM local_queue_messages ORDER BY seq")]


def test_receive_and_delete_read_their_own_rows_not_the_waiting_queue(
    postgres_url: str, waiting: list[int]
) -> None:
    seqs = waiting[-3:]  # the newest: a walk of the ready index in order meets them last
    received, read = counted(postgres_url, "receive", {
        "queue": "q", "now": NOW, "seqs": seqs, "visible_until": NOW + 30, "max_receives": 5,
    })
    assert sorted(r[0] for r in received) == seqs
    assert read <= 20, f"receiving 3 messages read {read} entries of {WAITING} waiting"
    receipts = {r[0]: r[1] for r in received}
    items = [(seqs[0], "not-the-receipt"), (seqs[1], receipts[seqs[1]]),
             (seqs[2], receipts[seqs[2]])]  # fmt: skip
    deleted, read = counted(postgres_url, "delete", {
        "queue": "q", "seqs": [s for s, _ in items], "receipts": [r for _, r in items],
    })
    assert sorted(r[0] for r in deleted) == seqs[1:]
    assert read <= 20, f"deleting 3 messages read {read} entries of {WAITING} waiting"


def test_refused_claims_are_settled_by_key(postgres_url: str, waiting: list[int]) -> None:
    _, read = counted(postgres_url, "hand_back", {
        "queue": "q", "seqs": waiting[-2:], "visible_at": [NOW + 5, NOW + 5],
    })
    assert read <= 20, f"handing 2 messages back read {read} entries"
    _, read = counted(postgres_url, "delete_obsolete", {"queue": "q", "seqs": waiting[-2:]})
    assert read <= 20, f"deleting 2 obsolete messages read {read} entries"
    with psycopg.connect(postgres_url) as conn:
        left = conn.execute("SELECT count(*) FROM local_queue_messages").fetchall()[0][0]
    assert left == WAITING - 2
