"""The queues one batch of job commands touches: claims checked and slots kept.

:class:`~ledger.application.JobLedger` decides a batch of job commands; a claim of a job
whose queue is controlled (has a :class:`~ledger.queue.Queue` aggregate) is refused when
the queue is paused or full, else takes a slot, and the end of an attempt that holds a
slot frees it. The slots a batch takes are recorded in one ``SlotsTaken`` per queue when
the batch is saved (one row and one version per batch, not per claim), or earlier when
an attempt of it ends in the same batch, so the log's order stays the slots' order. The
queues' events are saved with the jobs' in one transaction, so a
concurrent claim on the same queue conflicts on its version and the batch is decided
again (every round loads the queues afresh). Pure: loading is a callable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import NamedTuple

from eventsourcing.persistence import RecordConflictError

from ledger.commands import AnyQueueCommand, PauseQueue, ResumeQueue
from ledger.errors import LedgerError, QueueAtCapacity, QueuePaused
from ledger.job import Job
from ledger.queue import Queue
from ledger.status import Status

QueueLoader = Callable[[str], Queue | None]
"""The stored queue aggregate of a queue name, ``None`` when it was never controlled."""
QueueConfirm = Callable[[str], bool]
"""Is the queue handed out by the loader still the stored one? (``QueueCache.confirm``)"""


class StaleQueue(RecordConflictError):
    """A decision that appends nothing was taken on a queue another process has written
    to since: the batch is decided again, as after a version conflict."""


class Before(NamedTuple):
    """A job's attempt before a command was applied to it."""

    status: str
    attempt: int
    checkpoint: int
    """How many pending events the job had: the command's events follow."""


class QueueSlots:
    """The queues of one decision round, each loaded at most once."""

    def __init__(self, load: QueueLoader, confirm: QueueConfirm = lambda _: True) -> None:
        self._load = load
        self._confirm = confirm
        self._queues: dict[str, Queue | None] = {}
        self._taking: dict[str, dict[str, int]] = {}
        """Slots taken by this batch, not yet recorded: the attempt by job id, by queue."""
        self._added: dict[str, int] = {}
        """Of those, how many the queue does not hold already (what the cap counts)."""
        self._now: datetime | None = None

    def queue(self, name: str) -> Queue | None:
        if name not in self._queues:
            self._queues[name] = self._load(name)
        return self._queues[name]

    def refuse_claim(self, job: Job) -> LedgerError | None:
        """Why the job's queue refuses a claim now (paused, full), or ``None``. A job that
        is not pending is left to refuse the claim itself."""
        if job.status != Status.PENDING:
            return None
        queue = self.queue(job.queue)
        if queue is None:
            return None
        try:
            queue.check_claim(self._added.get(job.queue, 0))
        except (QueuePaused, QueueAtCapacity) as error:
            self._confirmed(job.queue)
            return error
        return None

    def _confirmed(self, name: str) -> None:
        """Raise :class:`StaleQueue` unless the queue decided on is the stored one."""
        if not self._confirm(name):
            raise StaleQueue(name)

    @staticmethod
    def before(job: Job) -> Before:
        return Before(str(job.status), job.attempt, len(job.pending_events))

    def follow(self, job: Job, before: Before, now: datetime) -> None:
        """Take the slot of an attempt the command opened, free the one it ended."""
        started = job.status == Status.IN_PROGRESS and (
            before.status != Status.IN_PROGRESS or job.attempt != before.attempt
        )
        ended = before.status == Status.IN_PROGRESS and (
            job.status != Status.IN_PROGRESS or job.attempt != before.attempt
        )
        if not (started or ended):
            return
        queue = self.queue(job.queue)
        if queue is None:
            return
        key = str(job.id)
        if ended:
            if key in self._taking.get(job.queue, ()):
                self._record(job.queue, queue, now)  # its slot first, then the free
            why = type(job.pending_events[before.checkpoint]).__name__
            if not queue.free_slot(job.id, before.attempt, why, now):
                self._confirmed(job.queue)  # holds no slot, or another process took it
        if started:
            taking = self._taking.setdefault(job.queue, {})
            if key not in taking and key not in queue.running:
                self._added[job.queue] = self._added.get(job.queue, 0) + 1
            taking[key] = job.attempt
            self._now = now

    def _record(self, name: str, queue: Queue, now: datetime) -> None:
        """Append the slots the batch took on the queue so far, in one event."""
        queue.take_slots(self._taking.pop(name, {}), now)
        self._added.pop(name, None)

    def changed(self) -> list[Queue]:
        """The queues with events to save (the slots taken recorded first)."""
        for name in list(self._taking):
            queue = self._queues.get(name)
            assert queue is not None
            assert self._now is not None
            self._record(name, queue, self._now)
        return [q for q in self._queues.values() if q is not None and q.pending_events]


def due_snapshots(queues: Sequence[Queue], interval: int) -> list[Queue]:
    """The queues whose pending (not yet collected) events cross a multiple of
    ``interval``: snapshot them once saved, so a busy queue loads in a few events."""
    if interval <= 0:
        return []
    return [
        q for q in queues
        if q.version // interval != (q.version - len(q.pending_events)) // interval
    ]


def apply_control(queue: Queue, command: AnyQueueCommand, now: datetime) -> bool:
    """Decide an operator's queue command; ``False`` when the queue was so already."""
    if isinstance(command, PauseQueue):
        return queue.pause(command.actor, command.reason, now)
    if isinstance(command, ResumeQueue):
        return queue.resume(command.actor, command.reason, now)
    return queue.set_limit(command.max_running, command.actor, command.reason, now)
