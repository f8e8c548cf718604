"""The events of a batch appended in the order its commands were decided. Pure.

A batch's events are saved in one transaction, but each has its own log position, and
invariants over positions see them one by one: "a capped queue never has more than
``max_running`` jobs in progress at any position" (``ledger/queue_audit.py``) is broken
by a batch ``[claim X (refused: full), complete Y, claim X]`` if X's ``Claimed`` is
appended before Y's ``Completed``, as it is when events are taken job by job in the order
the jobs first appeared. :class:`DecisionOrder` notes how many pending events each job
had after each decision and hands the events out interleaved in that order (each job's
own events keep their order, so the store's version checks are unchanged).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from uuid import UUID

from eventsourcing.domain import CanMutateAggregate

from ledger.job import Job

AnyEvent = CanMutateAggregate[UUID]


class DecisionOrder:
    """Marks of (job, pending events after a decision), in decision order."""

    def __init__(self) -> None:
        self._marks: list[tuple[UUID, int]] = []

    def mark(self, jobs: Mapping[UUID, Job], command: object, result: object) -> None:
        """Note the pending events of the command's job (named by the command, or by
        its outcome for an enqueue) after it was decided."""
        job_id = getattr(command, "job_id", None) or getattr(result, "job_id", None)
        job = jobs.get(job_id) if isinstance(job_id, UUID) else None
        if job is None or not job.pending_events:
            return
        mark = (job.id, len(job.pending_events))
        if not self._marks or self._marks[-1] != mark:
            self._marks.append(mark)

    def collect(self, jobs: Sequence[Job]) -> list[AnyEvent]:
        """Collect the jobs' pending events, interleaved in decision order (events not
        marked, if any, follow their job's marked ones)."""
        pending = {job.id: job.collect_events() for job in jobs}
        taken = dict.fromkeys(pending, 0)
        events: list[AnyEvent] = []
        for job_id, upto in self._marks:
            own = pending.get(job_id)
            if own is not None and upto > taken[job_id]:
                events.extend(own[taken[job_id]:upto])
                taken[job_id] = upto
        for job_id, own in pending.items():
            events.extend(own[taken[job_id]:])
        return events
