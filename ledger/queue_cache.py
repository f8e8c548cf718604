"""The queue aggregates this process saved last, reused while the store agrees.

A capped (or paused) queue takes a slot per claim, so a batch of claims loaded its
``Queue`` from the store (the latest snapshot and the events after it) every round, and
a queue with many running slots cost more to load than the claims themselves. The cache
keeps each queue as this process last saved it; :meth:`QueueCache.load` hands out a
private copy when the store's version of the queue still equals the held one (one index
lookup), else loads it afresh.

The first copy lent after a save is not even checked (no query): a decision that appends
to the queue (a slot taken or freed) is saved with a version check, so it conflicts if
another process wrote to the queue meanwhile; the decisions that append nothing (a claim
refused, an end that frees no slot) call :meth:`QueueCache.confirm` first, which checks
the version then. A copy lent again without a save in between (the batch appended
nothing to it, or its save conflicted) is checked when lent, and so is every copy of a
queue found stale once (another process writes to it too), until a check finds it
current again: under contention no save is spent on a doomed guess. A queue never
controlled (most queues: no cap, never paused) is checked the same way, one version lookup
per batch instead of a load's two reads, until it exists. So every decision
stands on the queue as stored, and a queue one process claims from costs a batch of
claims no extra read. A caller that reads the versions of the :meth:`watched` queues with
a statement its batch sends anyway (the claims' candidates, ADR 202) hands them over with
:meth:`versions_read`: each is used once, by the batch's first lookup of that queue,
instead of a lookup of its own. Pure: loading and the version lookup are callables.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from uuid import UUID

from ledger.job_cache import StreamLoader
from ledger.queue import Queue, queue_id

QueueLoader = Callable[[str], Queue | None]
UNPAUSED_FRESH = timedelta(seconds=1)
"""How long :meth:`QueueCache.paused` trusts a queue it found not paused (ADR 211)."""
UNPAUSED_MOST = 1024
"""Queues whose "not paused" answer is kept; past that the answers are dropped."""
WATCHED_MOST = 32
"""The queues a caller reads the versions of with its own statement (:meth:`watched`): the
ones loaded last, so a process that has seen many queues sends a short list each batch."""


class QueueCache:
    """Queues as last saved by this process, checked against the store's version."""

    def __init__(self, load: QueueLoader, recorder: object) -> None:
        """``recorder`` tells the stored versions when it is a ``StreamLoader``; else
        every load reads the store."""
        self._load = load
        self._versions = recorder.select_versions if isinstance(recorder, StreamLoader) else None
        self._held: dict[str, Queue] = {}
        self._saved: set[str] = set()
        """Held queues saved since last lent: the next copy is lent unchecked."""
        self._unchecked: set[str] = set()
        """Queues lent unchecked: :meth:`confirm` checks them."""
        self._contended: set[str] = set()
        """Queues found stale since last found current: always checked."""
        self._absent: set[str] = set()
        """Queues found never controlled: checked by their version (one lookup for the
        two reads of a load, its snapshot and its events) until one exists."""
        self._read: dict[UUID, int | None] = {}
        """Versions the caller read in its batch's transaction (:meth:`versions_read`)."""
        self._recent: dict[str, UUID] = {}
        """The queues loaded last (their ids), oldest first, at most WATCHED_MOST."""
        self._unpaused: dict[str, datetime] = {}
        """Queues :meth:`paused` found not paused, and the batch time it did."""

    def paused(self, name: str, now: datetime) -> bool:
        """Is the queue paused, as the outbox asks before writing a new message's row
        (ADR 211)? A queue found not paused is trusted for :data:`UNPAUSED_FRESH` of the
        batches' time without asking the store again: every enqueue into a queue nobody
        controls cost a version lookup, a round trip, half the time of a one-job enqueue.
        A pause recorded meanwhile by another process does not take a row back either
        (ADR 151): the workers' claims are refused until the resume. This process's own
        pauses and resumes are seen at once (:meth:`remember`, :meth:`controlled`); a
        paused queue is asked every time."""
        seen = self._unpaused.get(name)
        if seen is not None and timedelta(0) <= now - seen < UNPAUSED_FRESH:
            return False
        queue = self.load(name)
        if queue is not None and queue.paused:
            self._unpaused.pop(name, None)
            return True
        if len(self._unpaused) >= UNPAUSED_MOST:
            self._unpaused.clear()
        self._unpaused[name] = now
        return False

    def load(self, name: str) -> Queue | None:
        """A private copy of the queue as this process saved it (unchecked right after a
        save, else checked against the store's version), or as stored now; ``None`` if
        never controlled."""
        recent = self._recent  # the loaded last at the end
        recent[name] = recent.pop(name) if name in recent else queue_id(name)
        if len(recent) > WATCHED_MOST:
            del recent[next(iter(recent))]
        held = self._held.get(name)
        if held is None and name in self._absent and self._versions is not None:
            if self._stored_version(queue_id(name)) is None:
                return None
            self._absent.discard(name)
        if held is not None and self._versions is not None:
            if name in self._saved and name not in self._contended:
                self._saved.discard(name)
                self._unchecked.add(name)
                return private_copy(held)
            self._saved.discard(name)
            self._unchecked.discard(name)
            if self._current(held):
                self._contended.discard(name)
                return private_copy(held)
            self._stale(name)
        loaded = self._load(name)
        if loaded is None:
            self._absent.add(name)
        return loaded

    def confirm(self, name: str) -> bool:
        """Is the copy of the queue lent last still the stored queue? Checked (one
        lookup) only when it was lent unchecked; ``False`` drops it from the cache."""
        if name not in self._unchecked:
            return True
        self._unchecked.discard(name)
        held = self._held.get(name)
        if held is not None and self._current(held):
            return True
        self._stale(name)
        return False

    def _stale(self, name: str) -> None:
        self._held.pop(name, None)
        self._contended.add(name)

    def _current(self, held: Queue) -> bool:
        return self._stored_version(held.id) == held.version

    def _stored_version(self, queue: UUID) -> int | None:
        """The queue's stored version (``None``: never controlled), as the caller read it
        for this batch (once), else looked up."""
        if queue in self._read:
            return self._read.pop(queue)
        assert self._versions is not None
        return self._versions([queue]).get(queue)

    def watched(self) -> tuple[list[str], list[UUID]]:
        """The names and ids of the queues whose stored version a batch may look up: the
        :data:`WATCHED_MOST` loaded last, of those held and those found never
        controlled."""
        names = [n for n in self._recent if n in self._held or n in self._absent]
        return names, [self._recent[n] for n in names]

    @contextmanager
    def versions_read(self, versions: Mapping[UUID, int | None]) -> Iterator[None]:
        """Within: the first lookup of each queue of ``versions`` (read by the caller in
        the transaction its batch is decided and appended in) answers from it."""
        self._read = dict(versions)
        try:
            yield
        finally:
            self._read = {}

    def controlled(self, name: str) -> None:
        """This process paused, resumed or capped the queue: :meth:`paused` asks again."""
        self._unpaused.pop(name, None)

    def remember(self, queues: Sequence[Queue]) -> None:
        """Hold the queues just saved (their events collected)."""
        for queue in queues:
            self.controlled(queue.name)  # paused or resumed here: asked again
            if not queue.pending_events:
                self._absent.discard(queue.name)
                self._held[queue.name] = queue
                self._saved.add(queue.name)
                self._unchecked.discard(queue.name)

    def forget(self) -> None:
        self._unpaused.clear()
        self._held.clear()
        self._saved.clear()
        self._unchecked.clear()
        self._contended.clear()
        self._absent.clear()


def private_copy(queue: Queue) -> Queue:
    """A copy to decide on: its own slots and pending events; the rest is immutable."""
    copied = copy.copy(queue)
    copied.running = dict(queue.running)
    vars(copied)["_pending_events"] = []
    return copied
