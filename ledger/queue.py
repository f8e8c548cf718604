"""The queue aggregate: pause, resume and the exact cap on a queue's running jobs.

One ``Queue`` per queue name that an operator ever controlled (its id is the uuid5 of the
name, :func:`queue_id`). Besides the operator's events it records the running slots: a
claim of one of its jobs appends ``SlotTaken`` in the same atomic save as the job's
``Claimed``, and the end of that attempt ``SlotFreed``. Two concurrent claims therefore
conflict on the queue's version and the loser decides again, so the cap holds at every
position of the log (docs/adr/0100-operator-controls.md). A queue that was never
controlled has no aggregate and costs claims nothing but one read.

Decisions are pure: they check the queue and either trigger the event or raise a named
error (:class:`~ledger.errors.QueuePaused`, :class:`~ledger.errors.QueueAtCapacity`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate

from ledger.errors import QueueAtCapacity, QueuePaused

QUEUE_NAMESPACE = UUID("6f1d2a4e-3c57-4b8e-9a0f-5e2d7c1b9a14")
"""Namespace of the uuid5 ids of queues."""


def queue_id(name: str) -> UUID:
    """The id of the queue aggregate of the queue called ``name``."""
    return uuid.uuid5(QUEUE_NAMESPACE, name)


def check_claim(paused: bool, max_running: int | None, running: int, queue: str) -> None:
    """May one more job of the queue start? Raise the reason it may not."""
    if paused:
        raise QueuePaused(queue)
    if max_running is not None and running >= max_running:
        raise QueueAtCapacity(queue, max_running)


class Queue(Aggregate):
    """The operator's controls of one queue and the slots its running jobs hold."""

    class Opened(Aggregate.Created):
        """The queue was first controlled by an operator."""

        name: str

    class Paused(Aggregate.Event):
        """An operator paused the queue: nothing of it is sent or started."""

        actor: str
        reason: str | None

        def apply(self, queue: Queue) -> None:
            queue.paused = True
            queue.paused_by = self.actor
            queue.paused_reason = self.reason
            queue.paused_at = self.timestamp

    class Resumed(Aggregate.Event):
        """An operator resumed the queue."""

        actor: str
        reason: str | None

        def apply(self, queue: Queue) -> None:
            queue.paused = False
            queue.paused_by = queue.paused_reason = None
            queue.paused_at = None

    class LimitSet(Aggregate.Event):
        """An operator capped the queue's running jobs (``None``: no cap)."""

        max_running: int | None
        actor: str
        reason: str | None

        def apply(self, queue: Queue) -> None:
            queue.max_running = self.max_running

    class SlotTaken(Aggregate.Event):
        """A job of the queue was claimed: its attempt holds a slot. Appended one per
        claim before ``SlotsTaken``; kept (and its topic) so older logs still fold."""

        job_id: UUID
        attempt: int

        def apply(self, queue: Queue) -> None:
            queue.running[str(self.job_id)] = self.attempt

    class SlotsTaken(Aggregate.Event):
        """Jobs of the queue were claimed in one batch: each attempt holds a slot."""

        slots: dict[str, int]
        """The claimed attempt by job id (text, as in ``Queue.running``)."""

        def apply(self, queue: Queue) -> None:
            queue.running.update(self.slots)

    class SlotFreed(Aggregate.Event):
        """The attempt holding a slot ended (``why``: the job's event that ended it)."""

        job_id: UUID
        attempt: int
        why: str

        def apply(self, queue: Queue) -> None:
            queue.running.pop(str(self.job_id), None)

    def __init__(self, name: str) -> None:
        self.name = name
        self.paused = False
        self.paused_by: str | None = None
        self.paused_reason: str | None = None
        self.paused_at: datetime | None = None
        self.max_running: int | None = None
        self.running: dict[str, int] = {}
        """The attempt holding a slot, by job id (text, so snapshots encode it)."""

    @classmethod
    def open(cls, name: str, now: datetime) -> Queue:
        return cls._create(cls.Opened, id=queue_id(name), timestamp=now, name=name)

    # -- the operator's decisions ----------------------------------------------------------

    def pause(self, actor: str, reason: str | None, now: datetime) -> bool:
        """Pause the queue; ``False`` (nothing appended) when it is paused already."""
        if self.paused:
            return False
        self.trigger_event(self.Paused, timestamp=now, actor=actor, reason=reason)
        return True

    def resume(self, actor: str, reason: str | None, now: datetime) -> bool:
        """Resume the queue; ``False`` (nothing appended) when it is not paused."""
        if not self.paused:
            return False
        self.trigger_event(self.Resumed, timestamp=now, actor=actor, reason=reason)
        return True

    def set_limit(
        self, max_running: int | None, actor: str, reason: str | None, now: datetime
    ) -> bool:
        """Cap the queue's running jobs; ``False`` when the cap is that already."""
        if max_running == self.max_running:
            return False
        self.trigger_event(
            self.LimitSet, timestamp=now, max_running=max_running, actor=actor, reason=reason
        )
        return True

    # -- the slots ---------------------------------------------------------------------------

    def check_claim(self, taking: int = 0) -> None:
        """Raise :class:`QueuePaused` or :class:`QueueAtCapacity` if no job may start
        (``taking``: slots the batch took already, not yet recorded)."""
        check_claim(self.paused, self.max_running, len(self.running) + taking, self.name)

    def take_slot(self, job_id: UUID, attempt: int, now: datetime) -> None:
        """Record the claimed attempt's slot (after :meth:`check_claim` passed)."""
        self.take_slots({str(job_id): attempt}, now)

    def take_slots(self, slots: dict[str, int], now: datetime) -> None:
        """Record the slots of a batch's claimed attempts in one event (after
        :meth:`check_claim` passed for each)."""
        if slots:
            self.trigger_event(self.SlotsTaken, timestamp=now, slots=dict(slots))

    def free_slot(self, job_id: UUID, attempt: int, why: str, now: datetime) -> bool:
        """Free the ended attempt's slot; ``False`` when it holds none (claimed before
        the queue was controlled, or freed already)."""
        if self.running.get(str(job_id)) != attempt:
            return False
        self.trigger_event(
            self.SlotFreed, timestamp=now, job_id=job_id, attempt=attempt, why=why
        )
        return True
