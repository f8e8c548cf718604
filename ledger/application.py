"""The job ledger application: executes commands against jobs, alone or in batches.

Writes are optimistic. A batch of commands is decided against the jobs as this process
last saw them (its :class:`~ledger.job_cache.JobCache` of recently saved jobs), and all
the resulting events are appended in one transaction. If any job changed meanwhile
(another process appended to it: a heartbeat racing a stale detection), the store refuses
the whole transaction with a version conflict, nothing of the batch is written, and the
batch is decided again from freshly loaded jobs. A decision that fails against a cached
job is re-checked against the stored job before the error is reported, so a stale cache
can delay a command but never change its answer. Which jobs are held, how the ones not
held are read and when jobs are snapshotted is the cache's policy (ADR 5).
"""

from __future__ import annotations

import contextlib
import random
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import ClassVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.domain import Snapshot
from eventsourcing.persistence import Mapper, RecordConflictError
from eventsourcing.utils import EnvType

from ledger.archived import archived_history, archived_job, not_in_hot_log
from ledger.backoff import Backoff
from ledger.batch_order import DecisionOrder
from ledger.command_checks import validate_all
from ledger.commands import (
    AnyCommand,
    AnyQueueCommand,
    ClaimJob,
    CompleteJob,
    EnqueueJob,
    FailJob,
    Outcome,
    QueueOutcome,
    RecordHeartbeat,
    ReportCancelled,
    tag_of,
    validated,
)
from ledger.errors import (
    AttemptSuperseded,
    ConcurrencyExhausted,
    IdempotencyConflict,
    InvalidCommand,
    JobNotFound,
    LedgerError,
)
from ledger.event_mapper import LedgerMapper
from ledger.job import Job
from ledger.job_cache import JobCache
from ledger.job_commands import apply_command, outcome_of
from ledger.job_ids import idempotent_job_id
from ledger.new_jobs import NewJobWriter
from ledger.outbox import OUTBOX, outbox_batch
from ledger.policies.controls import scheduled_until
from ledger.policies.retry import RetryPolicy
from ledger.ports.archive import ArchivedEvents
from ledger.queue import Queue, queue_id
from ledger.queue_cache import QueueCache
from ledger.queue_slots import QueueSlots, apply_control, due_snapshots

BATCH_ROUNDS = 4
"""How often a batch is re-decided after version conflicts before going job by job."""

QUEUE_SNAPSHOT_INTERVAL = 1000
"""Snapshot a queue aggregate every this many events (two per claimed attempt)."""

Result = Outcome | LedgerError
"""Per-command result of a batch: the outcome, or the named error it was refused with."""


class JobLedger(Application[UUID]):
    """The event-sourced ledger of jobs; ``pause`` (``time.sleep``, from the composition
    root) spaces the tries after version conflicts (``ledger/backoff.py``)."""

    name = "JobLedger"
    is_snapshotting_enabled = True
    env: ClassVar[dict[str, str]] = {"ORIGINATOR_ID_TYPE": "uuid"}

    def __init__(
        self,
        env: EnvType | None = None,
        *,
        stale_threshold: timedelta = timedelta(minutes=10),
        retry_policy: RetryPolicy | None = None,
        snapshot_interval: int = 100,
        cache_size: int = 10_000,
        draw: Callable[[], float] = random.random,
        new_id: Callable[[], UUID] = uuid.uuid4,
        pause: Callable[[float], None] | None = None,
    ) -> None:
        super().__init__(env)
        self.back_off = Backoff(pause)
        """Waits before a retry after version conflicts (ADR 196)."""
        self.stale_threshold = stale_threshold
        self.retry_policy = retry_policy or RetryPolicy()
        self._draw = draw
        self._new_id = new_id
        self.archive: ArchivedEvents | None = None
        """Where archived jobs are read from (ADR 110); set by the composition root."""
        self.outbox: str | None = None
        """The local queue whose rows are written with the events asking for them (ADR
        151); set by the composition root, else the dispatcher sends every message."""
        self._jobs = self.job_cache = JobCache(  # public: ADR 208's claims hand it streams
            self._stored_job, self.recorder, self.mapper, self.snapshots,
            size=cache_size, snapshot_interval=snapshot_interval,
        )
        self.queue_cache = QueueCache(self.get_queue, self.recorder)
        self._new_jobs = NewJobWriter(  # batches of new jobs as rows (ADR 185)
            self.recorder, self.mapper, self._jobs, new_id=new_id,
            paused=self.queue_cache.paused,  # ADR 211
            settings=lambda: (self.outbox, self.archive),
        )

    def construct_mapper(self) -> Mapper[UUID]:
        """eventsourcing's mapper with ``Enqueued`` events encoded directly
        (``ledger/event_mapper.py``)."""
        return self.factory.mapper(self.construct_transcoder(), mapper_class=LedgerMapper)

    # -- reading ------------------------------------------------------------------------

    def get_job(self, job_id: UUID) -> Job:
        """The job as stored now (never from the cache); an archived job from its segment."""
        try:
            return self._stored_job(job_id)
        except JobNotFound:
            archived = archived_job(self.archive, self.mapper, job_id)
            if archived is None:
                raise
            return archived

    def _stored_job(self, job_id: UUID) -> Job:
        """The job in the hot log."""
        try:
            job: Job = self.repository.get(job_id)
        except AggregateNotFoundError:
            raise JobNotFound(job_id) from None
        return job

    def payload_of(self, job_id: UUID) -> object:
        """The job's payload. It never changes, so this process's cache answers when it
        holds the job (a job it just claimed); otherwise the job is loaded."""
        held, payload = self.held_payload(job_id)
        return payload if held else self.get_job(job_id).payload

    def held_payload(self, job_id: UUID) -> tuple[bool, object]:
        """``(True, payload)`` when this process's cache holds the job (no I/O), else
        ``(False, None)``."""
        cached = self._jobs.held(job_id)
        if cached is None:
            return False, None
        return True, cached.payload

    def held_cancel_request(self, job_id: UUID, attempt: int) -> bool:
        """True when this process's cache holds the job with a cancel request for
        ``attempt`` (no I/O): an in-process worker stops its handler before its next
        heartbeat would tell it (ADR 100)."""
        cached = self._jobs.held(job_id)
        return cached is not None and cached.attempt == attempt and cached.cancel_requested

    def history(self, job_id: UUID) -> list[Job.Event]:
        """Every event of the job, oldest first."""
        events = [e for e in self.events.get(job_id) if isinstance(e, Job.Event)]
        events = events or archived_history(self.archive, self.mapper, job_id)
        if not events:
            raise JobNotFound(job_id)
        return events

    def get_queue(self, name: str) -> Queue | None:
        """The queue's controls as stored now; ``None`` if it was never controlled."""
        try:
            queue: Queue = self.repository.get(queue_id(name))
        except AggregateNotFoundError:
            return None
        return queue

    def forget(self, job_id: UUID | None = None) -> None:
        """Drop one job (or all) from this process's cache."""
        self._jobs.forget(job_id)

    # -- writing ------------------------------------------------------------------------

    def execute(self, command: AnyCommand, now: datetime) -> Outcome:
        """Execute one command; raise its named error if it is refused."""
        (result,) = self.execute_batch([command], now)
        if isinstance(result, LedgerError):
            raise result
        return result

    def execute_batch(self, commands: Sequence[AnyCommand], now: datetime) -> list[Result]:
        """Execute many commands, appending all their events in one transaction.

        Returns one result per command, in order. Commands refused by the model get their
        error as the result and append nothing (a report from a superseded attempt
        appends its refusal). A version conflict re-decides the whole batch, with the jobs
        that changed meanwhile read afresh, so no command is dropped or applied twice.
        """
        checked = validate_all(commands)
        valid = [c for c in checked if not isinstance(c, InvalidCommand)]
        decided = iter(self._new_jobs.execute(valid, now, self._decide_in_rounds))
        return [c if isinstance(c, InvalidCommand) else next(decided) for c in checked]

    def _decide_in_rounds(
        self, commands: Sequence[AnyCommand], now: datetime, first: int = 0
    ) -> list[Result]:
        """Decide and save the batch (from round ``first``), again after each version
        conflict; after ``BATCH_ROUNDS`` conflicts, one command at a time."""
        fresh = False
        for round_ in range(first, BATCH_ROUNDS):
            self.back_off(round_)
            try:
                return self._decide_and_save(commands, now, fresh=fresh, guess=round_ == 0)
            except RecordConflictError:
                # Another process appended to some of the batch's jobs: forget the cached
                # jobs whose stored version moved on (all of them when the store cannot
                # tell) and decide again; jobs not cached are read afresh anyway.
                if not self._jobs.forget_changed(commands):
                    self._jobs.forget_batch(commands)
                    fresh = True
            except _StaleCache:
                self._jobs.forget_batch(commands)
                fresh = True
        # persistent contention: one job at a time
        return [self._execute_alone(command, now) for command in commands]

    def control_queue(self, command: AnyQueueCommand, now: datetime) -> QueueOutcome:
        """Pause, resume or cap a queue (``ledger.queue``); a conflict with a concurrent
        claim on the queue decides again."""
        command = validated(command)
        for tries in range(BATCH_ROUNDS * 2):
            self.back_off(tries)
            queue = self.get_queue(command.queue) or Queue.open(command.queue, now)
            changed = apply_control(queue, command, now)
            try:
                if queue.pending_events:
                    self._append([], [queue])
            except RecordConflictError:
                continue
            self.queue_cache.controlled(queue.name)  # the outbox asks again (ADR 211)
            return QueueOutcome(
                queue=queue.name, paused=queue.paused, max_running=queue.max_running,
                running=len(queue.running), version=queue.version, changed=changed,
            )
        raise ConcurrencyExhausted()

    def _execute_alone(self, command: AnyCommand, now: datetime) -> Result:
        for tries in range(BATCH_ROUNDS * 2):
            self.back_off(BATCH_ROUNDS + tries)
            try:
                return self._decide_and_save([command], now, fresh=True)[0]
            except RecordConflictError:
                continue
        return ConcurrencyExhausted()

    def _decide_and_save(
        self, commands: Sequence[AnyCommand], now: datetime, *, fresh: bool,
        guess: bool = False,
    ) -> list[Result]:
        jobs, absent = self._jobs.prefetch(commands, fresh)
        if guess:
            absent |= self._jobs.keys_guessed_new(commands, jobs)
        from_cache: set[UUID] = set()
        slots = QueueSlots(self.queue_cache.load, self.queue_cache.confirm)
        order = DecisionOrder()
        results: list[Result] = []
        for c in commands:
            results.append(
                self._decide(c, now, jobs, from_cache, slots, fresh=fresh, absent=absent)
            )
            order.mark(jobs, c, results[-1])
        changed = [job for job in jobs.values() if job.pending_events]
        if changed:
            queues = slots.changed()
            self._append(changed, queues, order, now=now)
            self.queue_cache.remember(queues)
            for job in changed:
                self._jobs.remember(job)
        return results

    def _decide(
        self,
        command: AnyCommand,
        now: datetime,
        jobs: dict[UUID, Job],
        from_cache: set[UUID],
        slots: QueueSlots,
        *,
        fresh: bool,
        absent: set[UUID],
    ) -> Result:
        if isinstance(command, EnqueueJob):
            return self._decide_enqueue(command, now, jobs, absent)
        job_id = command.job_id
        job = jobs.get(job_id)
        if job is None:
            if job_id in absent:
                return not_in_hot_log(self.archive, job_id)
            job = None if fresh else self._jobs.copy_of(job_id)
            if job is not None:
                from_cache.add(job_id)
            else:
                try:
                    job = self._stored_job(job_id)
                except JobNotFound:
                    return not_in_hot_log(self.archive, job_id)
            jobs[job_id] = job
        refused = slots.refuse_claim(job) if isinstance(command, ClaimJob) else None
        if refused is not None:
            return refused
        before = slots.before(job)
        checkpoint = before.checkpoint
        try:
            outcome = apply_command(
                job, command, now, retry_policy=self.retry_policy, draw=self._draw,
                stale_threshold=self.stale_threshold,
            )
        except LedgerError as error:
            del job.pending_events[checkpoint:]  # defensive: a refusal appends nothing
            if job_id in from_cache:
                # The refusal may come from a stale cached copy: decide the whole batch
                # again on stored jobs before answering.
                raise _StaleCache from error
            if isinstance(error, AttemptSuperseded):
                assert isinstance(
                    command, RecordHeartbeat | CompleteJob | FailJob | ReportCancelled
                )
                job.refuse_report(
                    error, command.worker_id, tag_of(command), now, command.worker_time
                )
            return error
        slots.follow(job, before, now)
        return outcome

    def _decide_enqueue(
        self, command: EnqueueJob, now: datetime, jobs: dict[UUID, Job], absent: set[UUID]
    ) -> Result:
        if command.idempotency_key is None:
            job_id = self._new_id()
        else:
            job_id = idempotent_job_id(command.customer_id, command.idempotency_key)
            existing = jobs.get(job_id) or (None if job_id in absent else self._jobs.find(job_id))
            existing = existing or archived_job(self.archive, self.mapper, job_id)  # tombstone
            if existing is not None:
                jobs[job_id] = existing
                if (existing.queue, existing.payload, existing.max_attempts) != (
                    command.queue, command.payload, command.max_attempts
                ):
                    return IdempotencyConflict(command.customer_id, command.idempotency_key)
                return outcome_of(existing)
        job = Job.enqueue(
            job_id=job_id, customer_id=command.customer_id, queue=command.queue,
            payload=command.payload, max_attempts=command.max_attempts,
            idempotency_key=command.idempotency_key, now=now, priority=command.priority,
            run_at=scheduled_until(command.run_at, command.delay_seconds, now),
            traceparent=command.traceparent,
        )
        jobs[job_id] = job
        return outcome_of(job, created=True)

    def _append(
        self, jobs: Sequence[Job], queues: Sequence[Queue] = (),
        order: DecisionOrder | None = None, *, now: datetime | None = None,
    ) -> None:
        """``save(*jobs, *queues)`` for known aggregates: eventsourcing's
        ``collect_events`` tells events from aggregates with two runtime-protocol
        ``isinstance`` checks per object, a fifth of a batched enqueue's time. The jobs'
        events go in the order the batch decided them (``ledger/batch_order.py``)."""
        processing_event: ProcessingEvent[UUID] = ProcessingEvent()
        snapshot = due_snapshots(queues, QUEUE_SNAPSHOT_INTERVAL)
        processing_event.events.extend((order or DecisionOrder()).collect(jobs))
        for queue in queues:
            processing_event.events.extend(queue.collect_events())
        for aggregate in (*jobs, *queues):
            processing_event.aggregates[aggregate.id] = aggregate
        if self.outbox is not None and now is not None:  # ADR 151: the queue rows with them
            batch = outbox_batch(
                processing_event.events, {job.id: job for job in jobs}, queue=self.outbox,
                now=now, paused=lambda name: self.queue_cache.paused(name, now),
                new_id=self._new_id,
            )
            if batch is not None:
                processing_event.saved_kwargs[OUTBOX] = batch
        recordings = self._record(processing_event)
        self._jobs.take_snapshots(processing_event)
        if snapshot and self.snapshots is not None:
            with contextlib.suppress(RecordConflictError):  # another process took it
                self.snapshots.put([Snapshot.take(q) for q in snapshot])
        self._notify(recordings)


class _StaleCache(Exception):
    """A cached job refused a command; the batch is decided again on stored jobs."""
