"""The queue aggregates this process saved last, reused while the store agrees.

A capped (or paused) queue takes a slot per claim, so a batch of claims loaded its
``Queue`` from the store (the latest snapshot and the events after it) every round, and
a queue with many running slots cost more to load than the claims themselves. The cache
keeps each queue as this process last saved it; :meth:`QueueCache.load` hands out a
private copy when the store's version of the queue still equals the held one (one index
lookup), else loads it afresh. The cap stays exact: every decision is taken on the
queue as stored now, and a save conflicts on its version if another process wrote to
the queue in between. Pure: loading and the version lookup are callables.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

from ledger.job_cache import StreamLoader
from ledger.queue import Queue, queue_id

QueueLoader = Callable[[str], Queue | None]


class QueueCache:
    """Queues as last saved by this process, checked against the store's version."""

    def __init__(self, load: QueueLoader, recorder: object) -> None:
        """``recorder`` tells the stored versions when it is a ``StreamLoader``; else
        every load reads the store."""
        self._load = load
        self._versions = recorder.select_versions if isinstance(recorder, StreamLoader) else None
        self._held: dict[str, Queue] = {}

    def load(self, name: str) -> Queue | None:
        """A private copy of the queue as stored now; ``None`` if never controlled."""
        held = self._held.get(name)
        if held is not None and self._versions is not None:
            if self._versions([queue_id(name)]).get(held.id) == held.version:
                return private_copy(held)
            self._held.pop(name, None)
        return self._load(name)

    def remember(self, queues: Sequence[Queue]) -> None:
        """Hold the queues just saved (their events collected)."""
        for queue in queues:
            if not queue.pending_events:
                self._held[queue.name] = queue

    def forget(self) -> None:
        self._held.clear()


def private_copy(queue: Queue) -> Queue:
    """A copy to decide on: its own slots and pending events; the rest is immutable."""
    copied = copy.copy(queue)
    copied.running = dict(queue.running)
    vars(copied)["_pending_events"] = []
    return copied
