"""Helpers shared by the SQL stores of the local queue (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ledger.ports.queue_store import DEAD_LETTER_SWEEP, NewMessage, StoredMessage


def insert_rows(queue: str, messages: Sequence[NewMessage]) -> list[dict[str, Any]]:
    """The parameters of the stores' ``insert`` statement, one dict per message."""
    return [
        {
            "queue": queue, "message_id": m.message_id, "job_id": m.job_id,
            "attempt": m.attempt, "body": m.body, "sent_at": m.sent_at,
            "visible_at": m.visible_at,
        }
        for m in messages
    ]


def sweep_claims(
    claim_round: Callable[[int], Sequence[Any]],
    to_message: Callable[[Any], StoredMessage],
    limit: int,
) -> list[StoredMessage]:
    """Run a store's ``claim`` statement until ``limit`` messages are handed out.

    ``claim_round(n)`` runs the statement for up to ``n`` rows in the caller's transaction;
    a row whose ninth column (dead-lettered at) is set was moved to the dead-letter queue
    by that round, not handed out.
    """
    claimed: list[StoredMessage] = []
    for _ in range(DEAD_LETTER_SWEEP):
        got = [(to_message(row), row[8]) for row in claim_round(limit - len(claimed))]
        claimed.extend(stored for stored, dead_at in got if dead_at is None)
        # Only dead-lettered rows in a full round: more may be waiting behind them.
        if len(claimed) >= limit or not got or all(d is None for _, d in got):
            break
    return sorted(claimed, key=lambda s: s.seq)
