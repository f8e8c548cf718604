"""Helpers shared by the SQL stores of the local queue (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from ledger.ports.queue_store import DEAD_LETTER_SWEEP, NewMessage, StoredMessage


class QueueRow(NamedTuple):
    """A message row as the stores' statements return it (by column name)."""

    seq: int
    message_id: str
    job_id: str
    attempt: int
    body: str
    sent_at: float
    receive_count: int
    receipt: str | None
    dead_at: float | None
    priority: int = 0

    def message(self) -> StoredMessage:
        return StoredMessage(
            seq=self.seq, message_id=str(self.message_id), job_id=str(self.job_id),
            attempt=self.attempt, body=self.body, sent_at=self.sent_at,
            receive_count=self.receive_count, receipt=self.receipt, priority=self.priority,
        )


def insert_rows(queue: str, messages: Sequence[NewMessage]) -> list[dict[str, Any]]:
    """The parameters of the stores' ``insert`` statement, one dict per message."""
    return [
        {
            "queue": queue, "message_id": m.message_id, "job_id": m.job_id,
            "attempt": m.attempt, "body": m.body, "sent_at": m.sent_at,
            "visible_at": m.visible_at, "job_queue": m.job_queue,
            "priority": m.priority,
        }
        for m in messages
    ]


def sweep_claims(
    claim_round: Callable[[int], Sequence[QueueRow]], limit: int
) -> list[StoredMessage]:
    """Run a store's ``claim`` statement until ``limit`` messages are handed out.

    ``claim_round(n)`` runs the statement for up to ``n`` rows in the caller's transaction;
    a row whose ``dead_at`` is set was moved to the dead-letter queue by that round, not
    handed out. Returned highest priority first, then in send order.
    """
    claimed: list[StoredMessage] = []
    for _ in range(DEAD_LETTER_SWEEP):
        got = claim_round(limit - len(claimed))
        claimed.extend(row.message() for row in got if row.dead_at is None)
        # Only dead-lettered rows in a full round: more may be waiting behind them.
        if len(claimed) >= limit or not got or all(row.dead_at is None for row in got):
            break
    return sorted(claimed, key=lambda s: (-s.priority, s.seq))
