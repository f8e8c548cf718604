"""Queues a worker waits on: a claim refused because the job's queue is paused or at its
cap (``QueuePaused``, ``QueueAtCapacity``: docs/adr/0100-operator-controls.md).

The refused message is handed back uncounted (it never dead-letters its job) and the
worker leaves that queue alone for a little while: messages of a waited-on queue it
receives meanwhile go back at once without asking the ledger, and a worker whose every
queue is waited on pauses its receives until the first wait ends.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable

from ledger.errors import LedgerError, QueueAtCapacity, QueuePaused

PAUSED_WAIT = 2.0
"""Seconds a worker leaves a paused queue alone before claiming from it again."""
FULL_WAIT = 0.5
"""Seconds it leaves a queue at its cap alone (a slot frees as soon as a job ends)."""
JITTER = 0.5
"""Each wait is stretched by up to this fraction, so workers do not come back together."""


def wait_for(error: LedgerError) -> float | None:
    """How long to leave the refused job's queue alone; ``None``: not a queue refusal."""
    if isinstance(error, QueuePaused):
        return PAUSED_WAIT
    if isinstance(error, QueueAtCapacity):
        return FULL_WAIT
    return None


class QueueWaits:
    """Until when each queue is waited on (``clock``: monotonic seconds)."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._clock = clock
        self._jitter = jitter
        self._until: dict[str, float] = {}

    def wait(self, queue: str, seconds: float) -> float:
        """Leave ``queue`` alone for ``seconds`` (stretched by the jitter); the wait."""
        seconds *= 1 + JITTER * self._jitter()
        until = self._clock() + seconds
        self._until[queue] = max(self._until.get(queue, 0.0), until)
        return seconds

    def remaining(self, queue: str) -> float:
        """Seconds ``queue`` is still waited on (0: not at all)."""
        until = self._until.get(queue)
        if until is None:
            return 0.0
        left = until - self._clock()
        if left <= 0:
            del self._until[queue]
            return 0.0
        return left

    def all_waiting(self, queues: Iterable[str] | None) -> float:
        """Seconds until one of ``queues`` may be received again; 0 when one may now (or
        the worker takes every queue: ``None``)."""
        if queues is None:
            return 0.0
        waits = [self.remaining(q) for q in queues]
        return min(waits) if waits else 0.0
