"""The job ledger application: executes commands against jobs, alone or in batches.

Writes are optimistic. A batch of commands is decided against the jobs as this process
last saw them (a small cache of recently saved jobs), and all the resulting events are
appended in one transaction. If any job changed meanwhile (another process appended to
it: a heartbeat racing a stale detection), the store refuses the whole transaction with a
version conflict, nothing of the batch is written, and the batch is decided again from
freshly loaded jobs. A decision that fails against a cached job is re-checked against the
stored job before the error is reported, so a stale cache can delay a command but never
change its answer. The jobs a batch needs that this process does not hold are read in one
query when the recorder can (``StreamLoader``; ADR 5).
"""

from __future__ import annotations

import contextlib
import random
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from copy import deepcopy
from datetime import datetime, timedelta
from typing import ClassVar, Protocol, runtime_checkable
from uuid import UUID

import msgspec
from eventsourcing.application import (
    AggregateNotFoundError,
    Application,
    ProcessingEvent,
    project_aggregate,
)
from eventsourcing.domain import Snapshot
from eventsourcing.persistence import RecordConflictError, StoredEvent
from eventsourcing.utils import EnvType

from ledger.commands import (
    AnyCommand,
    ClaimJob,
    CompleteJob,
    DetectStale,
    EnqueueJob,
    FailJob,
    JobCommand,
    Outcome,
    RecordAlert,
    RecordHeartbeat,
    RecordQueueDeadLetter,
    RedriveJob,
)
from ledger.errors import (
    AttemptSuperseded,
    ConcurrencyExhausted,
    IdempotencyConflict,
    InvalidCommand,
    JobNotFound,
    LedgerError,
)
from ledger.job import Job
from ledger.policies.retry import RetryPolicy

IDEMPOTENCY_NAMESPACE = UUID("6f0c7c36-55a4-4c1e-9f3b-1c7f0a2b9d11")
"""Namespace of the uuid5 ids that make enqueue idempotent per (customer, key)."""

BATCH_ROUNDS = 4
"""How often a batch is re-decided after version conflicts before going job by job."""


def idempotent_job_id(customer_id: str, idempotency_key: str) -> UUID:
    """The job id an idempotency key maps to: the same key always names the same job."""
    return uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{customer_id}\x00{idempotency_key}")


Result = Outcome | LedgerError
"""Per-command result of a batch: the outcome, or the named error it was refused with."""

PREFETCH_MIN = 2
"""A batch that needs this many jobs from the store loads them in one query, when the
recorder can (``StreamLoader``); fewer are loaded one by one."""


@runtime_checkable
class StreamLoader(Protocol):
    """A recorder that reads many aggregates' latest snapshot and later events at once."""

    def select_streams(
        self, ids: Sequence[UUID], snapshots_table: str | None
    ) -> dict[UUID, list[StoredEvent]]: ...

    def select_versions(self, ids: Sequence[UUID]) -> dict[UUID, int]: ...


class JobLedger(Application[UUID]):
    """The event-sourced ledger of jobs."""

    name = "JobLedger"
    is_snapshotting_enabled = True
    env: ClassVar[dict[str, str]] = {"ORIGINATOR_ID_TYPE": "uuid"}

    def __init__(
        self,
        env: EnvType | None = None,
        *,
        stale_threshold_seconds: float = 600.0,
        retry_policy: RetryPolicy | None = None,
        snapshot_interval: int = 100,
        cache_size: int = 10_000,
        draw: Callable[[], float] = random.random,
        new_id: Callable[[], UUID] = uuid.uuid4,
    ) -> None:
        super().__init__(env)
        self.stale_threshold_seconds = stale_threshold_seconds
        self.retry_policy = retry_policy or RetryPolicy()
        self.snapshot_interval = snapshot_interval
        self._draw = draw
        self._new_id = new_id
        self._cache: OrderedDict[UUID, Job] = OrderedDict()
        self._cache_size = cache_size
        recorder = self.recorder
        self._stream_loader = recorder if isinstance(recorder, StreamLoader) else None

    # -- reading ------------------------------------------------------------------------

    def get_job(self, job_id: UUID) -> Job:
        """The job as stored now (never from the cache)."""
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
        cached = self._cache.get(job_id)
        if cached is None:
            return False, None
        return True, cached.payload

    def history(self, job_id: UUID) -> list[Job.Event]:
        """Every event of the job, oldest first."""
        events = [e for e in self.events.get(job_id) if isinstance(e, Job.Event)]
        if not events:
            raise JobNotFound(job_id)
        return events

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
        valid: list[tuple[int, AnyCommand]] = []
        results: list[Result | None] = [None] * len(commands)
        for index, command in enumerate(commands):
            try:
                valid.append((index, _validated(command)))
            except InvalidCommand as error:
                results[index] = error
        fresh = False
        for _ in range(BATCH_ROUNDS):
            try:
                decided = self._decide_and_save([c for _, c in valid], now, fresh=fresh)
            except RecordConflictError:
                # Another process appended to some of the batch's jobs: forget the cached
                # jobs whose stored version moved on (all of them when the store cannot
                # tell) and decide again; jobs not cached are read afresh anyway.
                if not self._forget_changed(valid):
                    self._forget_batch(valid)
                    fresh = True
                continue
            except _StaleCache:
                self._forget_batch(valid)
                fresh = True
                continue
            for (index, _), result in zip(valid, decided, strict=True):
                results[index] = result
            return [r for r in results if r is not None]
        for index, command in valid:  # persistent contention: one job at a time
            results[index] = self._execute_alone(command, now)
        return [r for r in results if r is not None]

    def _execute_alone(self, command: AnyCommand, now: datetime) -> Result:
        for _ in range(BATCH_ROUNDS * 2):
            try:
                return self._decide_and_save([command], now, fresh=True)[0]
            except RecordConflictError:
                continue
        return ConcurrencyExhausted()

    def _decide_and_save(
        self, commands: Sequence[AnyCommand], now: datetime, *, fresh: bool
    ) -> list[Result]:
        jobs, absent = self._prefetch(commands, fresh)
        from_cache: set[UUID] = set()
        results = [
            self._decide(c, now, jobs, from_cache, fresh=fresh, absent=absent) for c in commands
        ]
        changed = [job for job in jobs.values() if job.pending_events]
        if changed:
            self._append(changed)
            for job in changed:
                self._remember(job)
        return results

    def _decide(
        self,
        command: AnyCommand,
        now: datetime,
        jobs: dict[UUID, Job],
        from_cache: set[UUID],
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
                return JobNotFound(job_id)
            cached = None if fresh else self._cache.get(job_id)
            if cached is not None:
                job = deepcopy(cached)
                from_cache.add(job_id)
            else:
                try:
                    job = self.get_job(job_id)
                except JobNotFound as error:
                    return error
            jobs[job_id] = job
        checkpoint = len(job.pending_events)
        try:
            return self._apply(job, command, now)
        except LedgerError as error:
            del job.pending_events[checkpoint:]  # defensive: a refusal appends nothing
            if job_id in from_cache:
                # The refusal may come from a stale cached copy: decide the whole batch
                # again on stored jobs before answering.
                raise _StaleCache from error
            if isinstance(error, AttemptSuperseded):
                assert isinstance(command, RecordHeartbeat | CompleteJob | FailJob)
                job.refuse_report(
                    error, command.worker_id, _tag(command), now, command.worker_time
                )
            return error

    def _decide_enqueue(
        self, command: EnqueueJob, now: datetime, jobs: dict[UUID, Job], absent: set[UUID]
    ) -> Result:
        if command.idempotency_key is None:
            job_id = self._new_id()
        else:
            job_id = idempotent_job_id(command.customer_id, command.idempotency_key)
            existing = jobs.get(job_id) or (None if job_id in absent else self._find(job_id))
            if existing is not None:
                jobs[job_id] = existing
                if (existing.queue, existing.payload, existing.max_attempts) != (
                    command.queue, command.payload, command.max_attempts
                ):
                    return IdempotencyConflict(command.customer_id, command.idempotency_key)
                return _outcome(existing)
        job = Job.enqueue(
            job_id=job_id,
            customer_id=command.customer_id,
            queue=command.queue,
            payload=command.payload,
            max_attempts=command.max_attempts,
            idempotency_key=command.idempotency_key,
            now=now,
        )
        jobs[job_id] = job
        return _outcome(job, created=True)

    def _apply(self, job: Job, command: AnyCommand, now: datetime) -> Outcome:
        match command:
            case ClaimJob():
                job.claim(command.worker_id, now, command.worker_time)
            case RecordHeartbeat():
                job.heartbeat(command.attempt, command.worker_id, now, command.worker_time)
            case CompleteJob():
                job.complete(
                    command.attempt, command.worker_id, command.result, now, command.worker_time
                )
            case FailJob():
                job.check_report(command.attempt, command.worker_id, "fail")
                delay = self.retry_policy.delay(job.attempts_used, job.max_attempts, self._draw())
                job.fail(
                    command.attempt, command.worker_id, command.error, now, delay,
                    worker_time=command.worker_time,
                )
            case DetectStale():
                delay = self.retry_policy.delay(job.attempts_used, job.max_attempts, self._draw())
                job.detect_stale(
                    command.attempt, timedelta(seconds=self.stale_threshold_seconds), now,
                    delay, command.detected_by,
                )
            case RedriveJob():
                job.redrive(command.actor, now)
            case RecordQueueDeadLetter():
                job.dead_letter_from_queue(
                    command.message_id, command.receive_count, now, command.message_attempt
                )
            case RecordAlert():
                job.record_alert(
                    command.dead_letter_version, command.channel, now,
                    delivery_id=command.delivery_id, failure=command.failure,
                )
            case _:  # pragma: no cover - the union is exhaustive
                raise InvalidCommand(f"unknown command {command!r}")
        return _outcome(job)

    def _append(self, jobs: Sequence[Job]) -> None:
        """``save(*jobs)`` for jobs known to be ``Job`` aggregates: eventsourcing's
        ``collect_events`` tells events from aggregates with two runtime-protocol
        ``isinstance`` checks per object, a fifth of a batched enqueue's time."""
        processing_event: ProcessingEvent[UUID] = ProcessingEvent()
        for job in jobs:
            processing_event.events.extend(job.collect_events())
            processing_event.aggregates[job.id] = job
        recordings = self._record(processing_event)
        self._take_snapshots(processing_event)
        self._notify(recordings)

    # -- the job cache ------------------------------------------------------------------

    def _prefetch(
        self, commands: Sequence[AnyCommand], fresh: bool
    ) -> tuple[dict[UUID, Job], set[UUID]]:
        """The stored jobs the batch needs and this process does not hold, in one query
        (the workers' claims name jobs they have never seen): the jobs found, and the ids
        found absent. Empty when there are too few or the recorder cannot."""
        recorder = self._stream_loader
        if recorder is None:
            return {}, set()
        wanted: dict[UUID, None] = {}
        for command in commands:
            job_id = _named_job(command)
            if job_id is not None and (fresh or job_id not in self._cache):
                wanted[job_id] = None
        if len(wanted) < PREFETCH_MIN:
            return {}, set()
        snapshots = self.snapshots.recorder if self.snapshots is not None else None
        table = getattr(snapshots, "events_table_name", None)
        streams = recorder.select_streams(list(wanted), table if isinstance(table, str) else None)
        jobs: dict[UUID, Job] = {}
        for job_id, stored in streams.items():
            events = [self.mapper.to_domain_event(s) for s in stored]
            job: object = project_aggregate(None, events)
            if isinstance(job, Job):
                jobs[job_id] = job
        return jobs, set(wanted) - set(streams)

    def _find(self, job_id: UUID) -> Job | None:
        cached = self._cache.get(job_id)
        if cached is not None:
            return deepcopy(cached)
        try:
            return self.get_job(job_id)
        except JobNotFound:
            return None

    def _remember(self, job: Job) -> None:
        # No copy: ``job`` was decided on a private copy (or freshly loaded) and nothing
        # else holds it once the batch returns; readers of the cache copy on the way out.
        self._cache[job.id] = job
        self._cache.move_to_end(job.id)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def _forget_changed(self, commands: Sequence[tuple[int, AnyCommand]]) -> bool:
        """Drop from the cache the batch's jobs that changed in the store since they were
        cached (one query); False when the recorder cannot tell."""
        loader = self._stream_loader
        if loader is None:
            return False
        cached: dict[UUID, int] = {}
        for _, command in commands:
            job_id = _named_job(command)
            job = None if job_id is None else self._cache.get(job_id)
            if job is not None:
                cached[job.id] = job.version
        if cached:
            stored = loader.select_versions(list(cached))
            for job_id, version in cached.items():
                if stored.get(job_id) != version:
                    self._cache.pop(job_id, None)
        return True

    def _forget_batch(self, commands: Sequence[tuple[int, AnyCommand]]) -> None:
        for _, command in commands:
            if isinstance(command, JobCommand):
                self._cache.pop(command.job_id, None)

    def forget(self, job_id: UUID | None = None) -> None:
        """Drop one job (or all) from this process's cache."""
        if job_id is None:
            self._cache.clear()
        else:
            self._cache.pop(job_id, None)

    # -- snapshots ------------------------------------------------------------------------

    def _take_snapshots(self, processing_event: ProcessingEvent[UUID]) -> None:
        """Snapshot a job every ``snapshot_interval`` versions, from memory.

        eventsourcing's default reloads the job to snapshot it and lets a failure escape
        from ``save()`` after the events were committed; a snapshot is only an
        optimisation, so this one uses the saved object and never fails the save.
        """
        if self.snapshots is None or self.snapshot_interval <= 0:
            return
        due = {
            e.originator_id
            for e in processing_event.events
            if e.originator_version % self.snapshot_interval == 0
        }  # one pass over the events: a batch of n jobs must not cost n * n comparisons
        snapshots = [
            Snapshot.take(aggregate)
            for job_id, aggregate in processing_event.aggregates.items()
            if job_id in due and isinstance(aggregate, Job)
        ]
        if snapshots:
            with contextlib.suppress(RecordConflictError):  # another process took it
                self.snapshots.put(snapshots)


def _named_job(command: AnyCommand) -> UUID | None:
    """The job a command is about, if known before deciding: its ``job_id``, or the id an
    enqueue's idempotency key maps to (``None`` for an enqueue without a key)."""
    if isinstance(command, JobCommand):
        return command.job_id
    if isinstance(command, EnqueueJob) and command.idempotency_key is not None:
        return idempotent_job_id(command.customer_id, command.idempotency_key)
    return None


def _validated(command: AnyCommand) -> AnyCommand:
    """Enforce the boundary constraints on commands built in-process too."""
    try:
        return msgspec.json.decode(msgspec.json.encode(command), type=type(command))
    except msgspec.ValidationError as error:
        raise InvalidCommand(str(error)) from None


def _outcome(job: Job, *, created: bool = False) -> Outcome:
    return Outcome(
        job_id=job.id, status=str(job.status), attempt=job.attempt, version=job.version,
        created=created,
    )


def _tag(command: AnyCommand) -> str:
    """The command's tag ("heartbeat", "complete", ...), as recorded in refusals."""
    return str(type(command).__struct_config__.tag)


class _StaleCache(Exception):
    """A cached job refused a command; the batch is decided again on stored jobs."""
