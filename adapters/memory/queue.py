"""The in-memory fake of the transport: a local queue whose store is a dict.

It has exactly the local queue's semantics (it *is* :class:`~adapters.local_queue.queue.LocalQueue`
on a different store), so unit tests elsewhere can use it in place of SQS or the database
and the contract tests hold it to the same rules. Several ``LocalQueue`` objects may share
one store, like processes sharing a database.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from adapters.local_queue.queue import LocalQueue
from ledger.ports.queue_store import (
    DEAD_LETTER_SWEEP,
    DEFAULT_MAX_RECEIVES,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_QUEUE,
    DEFAULT_VISIBILITY_TIMEOUT,
    NewMessage,
    StoredMessage,
)


@dataclass(frozen=True, slots=True)
class _Row:
    stored: StoredMessage
    visible_at: float
    dead_at: float | None = None
    job_queue: str = "default"
    priority: int = 0


class MemoryQueueStore:
    """Messages in a dict, guarded by a lock; nothing survives the process."""

    blocking = False

    def __init__(self) -> None:
        self._rows: dict[str, dict[int, _Row]] = {}
        self._next_seq = 1
        self._lock = threading.Lock()

    def put(self, queue: str, messages: Sequence[NewMessage]) -> None:
        with self._lock:
            rows = self._rows.setdefault(queue, {})
            for message in messages:
                seq = self._next_seq
                self._next_seq += 1
                stored = StoredMessage(
                    seq=seq, message_id=message.message_id, job_id=message.job_id,
                    attempt=message.attempt, body=message.body, sent_at=message.sent_at,
                    receive_count=0, receipt=None, priority=message.priority,
                )
                rows[seq] = _Row(
                    stored, message.visible_at, job_queue=message.job_queue,
                    priority=message.priority,
                )

    def claim(
        self, queue: str, *, now: float, limit: int, visible_until: float, max_receives: int,
        job_queues: Sequence[str] | None = None,
    ) -> list[StoredMessage]:
        wanted = None if job_queues is None else set(job_queues)
        with self._lock:
            rows = self._rows.get(queue, {})
            due = sorted(
                (
                    r for r in rows.values()
                    if r.dead_at is None and r.visible_at <= now
                    and (wanted is None or r.job_queue in wanted)
                ),
                key=lambda r: (-r.priority, r.visible_at, r.stored.seq),
            )
            exhausted = [r for r in due if r.stored.receive_count >= max_receives]
            for row in exhausted[:DEAD_LETTER_SWEEP]:
                rows[row.stored.seq] = replace(
                    row, stored=replace(row.stored, receipt=None), dead_at=now
                )
            claimed = []
            for row in [r for r in due if r.stored.receive_count < max_receives][:limit]:
                stored = replace(
                    row.stored,
                    receive_count=row.stored.receive_count + 1,
                    receipt=secrets.token_hex(16),
                )
                rows[stored.seq] = replace(row, stored=stored, visible_at=visible_until)
                claimed.append(stored)
            return claimed

    def set_visibility(self, queue: str, seq: int, receipt: str, visible_at: float) -> bool:
        with self._lock:
            row = self._current(queue, seq, receipt)
            if row is None:
                return False
            self._rows[queue][seq] = replace(row, visible_at=visible_at)
            return True

    def hand_back(self, queue: str, seq: int, receipt: str, visible_at: float) -> bool:
        with self._lock:
            row = self._current(queue, seq, receipt)
            if row is None:
                return False
            count = max(0, row.stored.receive_count - 1)
            stored = replace(row.stored, receive_count=count, receipt=None)
            self._rows[queue][seq] = replace(row, stored=stored, visible_at=visible_at)
            return True

    def delete_many(self, queue: str, items: Sequence[tuple[int, str]]) -> list[bool]:
        deleted = []
        with self._lock:
            for seq, receipt in items:
                current = self._current(queue, seq, receipt) is not None
                if current:
                    del self._rows[queue][seq]
                deleted.append(current)
        return deleted

    def dead_letters(self, queue: str, limit: int) -> list[StoredMessage]:
        with self._lock:
            dead = [r for r in self._rows.get(queue, {}).values() if r.dead_at is not None]
            dead.sort(key=lambda r: (r.dead_at, r.stored.seq))
            return [r.stored for r in dead[:limit]]

    def delete_dead(self, queue: str, seq: int) -> bool:
        with self._lock:
            row = self._rows.get(queue, {}).get(seq)
            if row is None or row.dead_at is None:
                return False
            del self._rows[queue][seq]
            return True

    def revive(self, queue: str, message_ids: Sequence[str], now: float) -> list[StoredMessage]:
        wanted = set(message_ids)
        with self._lock:
            rows = self._rows.get(queue, {})
            moved = []
            for seq, row in list(rows.items()):
                if row.dead_at is not None and row.stored.message_id in wanted:
                    stored = replace(row.stored, receive_count=0, receipt=None)
                    rows[seq] = replace(row, stored=stored, visible_at=now, dead_at=None)
                    moved.append(stored)
            return moved

    def close(self) -> None:
        """Nothing to release: the messages stay for other queues sharing the store."""

    def _current(self, queue: str, seq: int, receipt: str) -> _Row | None:
        row = self._rows.get(queue, {}).get(seq)
        if row is None or row.dead_at is not None or row.stored.receipt != receipt:
            return None
        return row


def memory_transport(
    store: MemoryQueueStore | None = None,
    *,
    name: str = DEFAULT_QUEUE,
    visibility_timeout: float = DEFAULT_VISIBILITY_TIMEOUT,
    max_receives: int = DEFAULT_MAX_RECEIVES,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    clock: Callable[[], float] = time.time,
) -> LocalQueue:
    """A transport kept in memory (a new store unless one is given to share)."""
    return LocalQueue(
        store or MemoryQueueStore(), name=name, visibility_timeout=visibility_timeout,
        max_receives=max_receives, poll_interval=poll_interval, clock=clock,
    )
