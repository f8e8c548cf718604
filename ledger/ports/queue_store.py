"""The local queue's store port: where a local queue keeps its messages.

Implemented by the in-memory store (``adapters.memory``) and the SQL stores
(``adapters.sqlite``, ``adapters.postgres``); the queue itself is
:class:`adapters.local_queue.LocalQueue`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

DEFAULT_QUEUE = "jobs"
DEFAULT_VISIBILITY_TIMEOUT = 30.0
DEFAULT_MAX_RECEIVES = 5
DEFAULT_POLL_INTERVAL = 0.1
DEAD_LETTER_SWEEP = 100
"""How many over-received messages one receive moves to the dead-letter queue at most."""


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A row to insert."""

    message_id: str
    job_id: str
    attempt: int
    body: str
    sent_at: float
    visible_at: float
    job_queue: str = "default"
    """The message's logical queue (:attr:`~ledger.ports.transport.JobMessage.queue`)."""
    priority: int = 0
    """Higher is claimed first; within a priority, the oldest visible first."""


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A row as the store returns it."""

    seq: int
    message_id: str
    job_id: str
    attempt: int
    body: str
    sent_at: float
    receive_count: int
    receipt: str | None
    priority: int = 0


class QueueStore(Protocol):
    """Where a local queue keeps its messages; every method is one transaction.

    Stores translate their driver's errors into :class:`~ledger.errors.TransportError`.
    """

    blocking: bool
    """True when the methods do I/O (they then run in a worker thread)."""

    def put(self, queue: str, messages: Sequence[NewMessage]) -> None: ...

    def claim(
        self, queue: str, *, now: float, limit: int, visible_until: float, max_receives: int,
        job_queues: Sequence[str] | None = None,
    ) -> list[StoredMessage]:
        """Dead-letter visible messages received ``max_receives`` times already, then hand
        out up to ``limit`` visible ones (highest priority first, then the oldest visible,
        then send order; returned highest priority first, then in send order): receive
        count + 1, a new receipt, invisible until ``visible_until``. With ``job_queues``,
        only messages of those logical queues are looked at (the others are neither
        counted nor dead-lettered)."""
        ...

    def set_visibility(self, queue: str, seq: int, receipt: str, visible_at: float) -> bool:
        """False unless ``receipt`` is the message's current receipt."""
        ...

    def hand_back(self, queue: str, seq: int, receipt: str, visible_at: float) -> bool:
        """Undo the receive that gave out ``receipt``: receive count - 1 (never below 0),
        visible at ``visible_at``, no receipt. False unless ``receipt`` is the message's
        current receipt, so one receive is undone at most once."""
        ...

    def delete_many(self, queue: str, items: Sequence[tuple[int, str]]) -> list[bool]:
        """Delete each ``(seq, receipt)``; per item, whether it was deleted."""
        ...

    def dead_letters(self, queue: str, limit: int) -> list[StoredMessage]: ...

    def delete_dead(self, queue: str, seq: int) -> bool: ...

    def revive(self, queue: str, message_ids: Sequence[str], now: float) -> list[StoredMessage]:
        """Move the named dead letters back: visible now, receive count 0."""
        ...

    def close(self) -> None: ...


