"""Running a bulk action (ADR 100): select the jobs from ``job_status``, act in batches.

:class:`ActionRunner` records the action (``Action.Started`` with the count), then takes
the matching jobs in id order a batch at a time (keyset pagination), executes one
command per job naming the action with :meth:`JobLedger.execute_batch` (one transaction
a batch), and records ``Progressed`` after each batch. A run that fails records
``Interrupted``; a process killed mid-run leaves the action running at its last batch.
Either way :meth:`ActionRunner.run` on the same id resumes after the last recorded
batch; a batch repeated after a crash acts on no job twice (the ledger refuses a second
cancel, redrive or requeue, and that job is counted as skipped).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.utils import get_topic

from adapters.tracing import observe
from ledger.action import (
    BATCH_SIZE,
    SAMPLE_SIZE,
    Action,
    ActionFilter,
    ActionKind,
    ActionNotFound,
    InvalidFilter,
    checked_filter,
    checked_reason,
)
from ledger.application import JobLedger, Result
from ledger.commands import AnyCommand, CancelJob, RedriveJob, RequeueJob
from ledger.errors import LedgerError
from ledger.status import Status
from projections.actions import ACTIONS
from projections.queries.action_targets import ActionTargets
from projections.queries.actions import ActionQueries
from projections.queries.job_status import JobStatus
from projections.store import ViewStore

T = TypeVar("T")
Reader = Callable[[Callable[[ViewStore], Any]], Any]
"""Runs a read on a view session (the CLI's own session, or the API's pool)."""


@dataclass(frozen=True)
class Preview:
    """What a dry run shows: how many jobs match and the first ten of them."""

    kind: ActionKind
    job_filter: ActionFilter
    count: int
    sample: list[JobStatus]

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": True, "kind": self.kind.value, "filter": self.job_filter.to_dict(),
            "count": self.count, "sample": [job.to_dict() for job in self.sample],
        }


def _unfinished_in_view(store: ViewStore) -> tuple[int, list[UUID]]:
    """The view's position, then its unfinished actions: rows read after the position
    are at least as new, and the log after it adds what they lack."""
    position = store.tracking(ACTIONS.name).position
    return position, ActionQueries(store).unfinished()


def command_for(
    kind: ActionKind, job_id: UUID, actor: str, reason: str | None, action_id: UUID | None
) -> AnyCommand:
    """The command an action of ``kind`` executes on one job, naming the action."""
    named = None if action_id is None else str(action_id)
    if kind is ActionKind.RETRY:
        return RedriveJob(job_id=job_id, actor=actor, reason=reason, action_id=named)
    if kind is ActionKind.CANCEL:
        return CancelJob(job_id=job_id, actor=actor, reason=reason, action_id=named)
    return RequeueJob(job_id=job_id, actor=actor, reason=reason, action_id=named)


def action_filter(kind: ActionKind, data: dict[str, Any] | ActionFilter) -> ActionFilter:
    """The filter checked, and for ``retry`` limited to dead letters (the only jobs a
    redrive applies to); a cancel or requeue needs at least one criterion, so a request
    that forgot its filter does not act on every job of every customer."""
    found = checked_filter(data)
    if kind is not ActionKind.RETRY and found == ActionFilter():
        raise InvalidFilter(
            f"a bulk {kind.value} needs a filter: give at least one of "
            + ", ".join(ActionFilter.__struct_fields__)
        )
    if kind is ActionKind.RETRY:
        if found.status not in {None, Status.DEAD_LETTERED.value}:
            raise InvalidFilter("retry applies to dead-lettered jobs only (--status dead_lettered)")
        return checked_filter(found.to_dict() | {"status": Status.DEAD_LETTERED.value})
    return found


class ActionRunner:
    """Starts, runs, resumes and reads bulk actions over one ledger."""

    def __init__(
        self,
        ledger: JobLedger,
        read: Reader,
        clock: Callable[[], datetime],
        *,
        batch_size: int = BATCH_SIZE,
        new_id: Callable[[], UUID] = uuid.uuid4,
        execute: Callable[[Sequence[AnyCommand], datetime], list[Result]] | None = None,
    ) -> None:
        self.ledger = ledger
        self.read = read
        self.clock = clock
        self.batch_size = batch_size
        self.new_id = new_id
        self.execute = execute or ledger.execute_batch

    def preview(self, kind: ActionKind, job_filter: ActionFilter) -> Preview:
        """The count and a sample of ten; appends nothing."""

        def read(store: ViewStore) -> tuple[int, list[JobStatus]]:
            targets = ActionTargets(store)
            return targets.count(job_filter), targets.page(job_filter, None, SAMPLE_SIZE)

        count, sample = self.read(read)
        return Preview(kind, job_filter, count, sample)

    def start(
        self, kind: ActionKind, job_filter: ActionFilter, actor: str, reason: str | None
    ) -> Action:
        """Record a new action over the jobs matching now (a filter without ``until`` is
        closed at the start, so jobs enqueued later are not swept in)."""
        now = self.clock()
        reason = checked_reason(reason)
        if job_filter.until is None:
            job_filter = checked_filter(job_filter.to_dict() | {"until": now.isoformat()})
        total = self.read(lambda store: ActionTargets(store).count(job_filter))
        action = Action.start(
            action_id=self.new_id(), kind=kind, job_filter=job_filter, actor=actor,
            reason=reason, total=total, now=now,
        )
        self.ledger.save(action)
        return action

    def get(self, action_id: UUID) -> Action:
        try:
            found: object = self.ledger.repository.get(action_id)
        except AggregateNotFoundError:
            raise ActionNotFound(action_id) from None
        if not isinstance(found, Action):
            raise ActionNotFound(action_id)
        return found

    def run(
        self,
        action_id: UUID,
        should_stop: Callable[[], bool] | None = None,
        on_batch: Callable[[Action], None] | None = None,
    ) -> Action:
        """Run (or resume) the action to its end, a batch at a time, telling ``on_batch``
        after each recorded batch; if ``should_stop`` says so between two batches, return
        it still running (resumable)."""
        action = self.get(action_id)
        action.check_resumable()
        try:
            while self._step(action):
                if on_batch is not None:
                    on_batch(action)
                if should_stop is not None and should_stop():
                    break
        except (LedgerError, OSError) as error:
            self._interrupted(action_id, error)
            raise
        return action

    def unfinished(self, page: int = 1000) -> list[UUID]:
        """The actions started and not finished (running, killed mid-run or interrupted),
        oldest first: the ``actions`` view's (its index on ``state``), then the log's
        ``Started`` and ``Finished`` notifications after the view's position (the view's
        lag, read by position: a whole log only while the view has not run)."""
        topics = [get_topic(Action.Started), get_topic(Action.Finished)]
        after, in_view = self.read(_unfinished_in_view) or (0, [])
        started: dict[UUID, None] = dict.fromkeys(in_view)
        while True:
            found = self.ledger.recorder.select_notifications(after + 1, page, topics=topics)
            for notification in found:
                action_id = UUID(str(notification.originator_id))
                if notification.topic == topics[0]:
                    started[action_id] = None
                else:
                    started.pop(action_id, None)
            if len(found) < page:
                return list(started)
            after = found[-1].id

    def _step(self, action: Action) -> bool:
        """One batch; ``False`` (and ``Finished`` recorded) when no job is left."""
        job_filter, after = action.job_filter, action.after
        page: list[JobStatus] = self.read(
            lambda store: ActionTargets(store).page(job_filter, after, self.batch_size)
        )
        now = self.clock()
        if not page:
            action.finish(now)
            self.ledger.save(action)
            return False
        commands = [
            command_for(action.kind, job.job_id, action.actor, action.reason, action.id)
            for job in page
        ]
        results = self.execute(commands, now)
        observe(commands, results)
        acted = sum(1 for result in results if not isinstance(result, LedgerError))
        action.progress(page[-1].job_id, len(page), acted, self.clock())
        self.ledger.save(action)
        return True

    def _interrupted(self, action_id: UUID, error: Exception) -> None:
        """Record the interruption on a fresh copy (the run's copy may hold events that
        were not saved); a failure to record it leaves the action resumable anyway."""
        try:
            action = self.get(action_id)
            action.interrupt(f"{type(error).__name__}: {error}", self.clock())
            self.ledger.save(action)
        except (LedgerError, OSError):
            pass
