"""A batch of new jobs appended as rows, without a job object per job (issue 19, ADR 185).

A fresh job's ``Enqueued`` event is fully determined by its command, its id and the
batch's ``now``, so a batch made only of enqueues of new jobs needs neither the decision
loop nor an aggregate per job: :func:`new_job_rows` writes each event's stored state as
``before + payload + after`` (the parts are encoded once per distinct set of fields with
:func:`~ledger.event_mapper.enqueued_parts`, the payload with one msgspec call), and
:class:`NewJobWriter` appends the batch in one statement with its outbox rows (ADR 151).
The cache holds each job as a :class:`NewJob`, built the first time it is asked for.

The batch goes back to the general path (``JobLedger._decide_in_rounds``) when anything
needs a decision: a command that is not an enqueue, a keyed job this process holds or
archived, a key twice in the batch, a mapper that does not encode ``Enqueued`` directly, a
snapshot due at version 1. A keyed job guessed new that exists (ADR 165) makes the append
fail on its first version; nothing is written and the general path reads it (its second
round). The rows decode, through the normal mapper, to the event ``Job.enqueue`` makes
(``tests/unit/test_new_jobs.py``).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

import msgspec
from eventsourcing.persistence import RecordConflictError, StoredEvent
from eventsourcing.utils import get_topic

from ledger.archived import archived_job
from ledger.commands import AnyCommand, EnqueueJob, Outcome
from ledger.errors import LedgerError
from ledger.event_mapper import ENQUEUED_TOPIC, EnqueuedFields, enqueued_parts
from ledger.job import Job
from ledger.job_cache import JobCache
from ledger.job_ids import idempotent_job_id
from ledger.outbox import OUTBOX, OutboxBatch
from ledger.policies.controls import scheduled_until
from ledger.ports.archive import ArchivedEvents
from ledger.ports.transport import JobMessage, encode_message

JOB_TOPIC = get_topic(Job)
_PAYLOAD = msgspec.json.Encoder().encode
Rows = tuple[list[UUID], list[int], list[str], list[bytes]]
"""The append's four columns: originator ids, versions, topics, states."""
Decide = Callable[[Sequence[AnyCommand], datetime, int], list[Outcome | LedgerError]]
"""The general path: decide the batch from the given round (0: keys guessed new)."""


_V4 = ~(0xC000 << 48) & ~(0xF000 << 64), (0x8000 << 48) | (4 << 76)
"""The RFC 4122 variant and version 4 bits, as ``uuid.UUID(version=4)`` sets them."""


def uuid4s(count: int) -> list[UUID]:
    """``count`` random UUIDs, as ``uuid.uuid4`` makes them (from the system's random
    source) but from one call for all of them (a system call per id was a tenth of a
    batched enqueue) and without the constructor's checks of its arguments, which these
    ints pass by construction."""
    raw = secrets.token_bytes(16 * count)
    keep, set_ = _V4
    ids: list[UUID] = []
    for start in range(0, 16 * count, 16):
        new = object.__new__(UUID)
        object.__setattr__(new, "int", int.from_bytes(raw[start:start + 16]) & keep | set_)
        object.__setattr__(new, "is_safe", uuid.SafeUUID.unknown)
        ids.append(new)
    return ids


@runtime_checkable
class RowAppender(Protocol):
    """A recorder that appends the columns as they are (no ``StoredEvent`` per row)."""

    def insert_rows(self, rows: Rows, **kwargs: Any) -> None: ...


class NewJob:
    """A new job as the cache holds it until asked for it: its command, id and time."""

    __slots__ = ("command", "job_id", "now", "run_at")

    def __init__(
        self, command: EnqueueJob, job_id: UUID, now: datetime, run_at: datetime | None
    ) -> None:
        self.command, self.job_id, self.now, self.run_at = command, job_id, now, run_at

    def build(self) -> Job:
        c = self.command
        job = Job.enqueue(
            job_id=self.job_id, customer_id=c.customer_id, queue=c.queue, payload=c.payload,
            max_attempts=c.max_attempts, idempotency_key=c.idempotency_key, now=self.now,
            priority=c.priority, run_at=self.run_at, traceparent=c.traceparent,
        )
        job.collect_events()  # saved already
        return job


@dataclass(frozen=True)
class NewJobRows:
    """The batch as the log stores it, and what each command is answered."""

    jobs: list[NewJob]
    rows: Rows
    outcomes: list[Outcome]


def new_job_rows(commands: Sequence[EnqueueJob], ids: Sequence[UUID], now: datetime) -> NewJobRows:
    """Each command's new job (id from ``ids``) as its ``Enqueued`` row. Raises
    ``InvalidCommand`` as ``scheduled_until`` does."""
    parts: dict[EnqueuedFields, tuple[bytes, bytes]] = {}
    jobs: list[NewJob] = []
    states: list[bytes] = []
    outcomes: list[Outcome] = []
    for c, job_id in zip(commands, ids, strict=True):
        run_at = scheduled_until(c.run_at, c.delay_seconds, now)
        shape: EnqueuedFields = (
            c.customer_id, c.queue, c.max_attempts, c.idempotency_key, c.priority, run_at,
            c.traceparent,
        )
        part = parts.get(shape)
        if part is None:
            part = parts[shape] = enqueued_parts(now, JOB_TOPIC, shape)
        states.append(b"".join((part[0], _PAYLOAD(c.payload), part[1])))
        jobs.append(NewJob(c, job_id, now, run_at))
        outcomes.append(Outcome(
            job_id=job_id, status="pending" if run_at is None else "scheduled", attempt=0,
            version=1, created=True, traceparent=c.traceparent,
        ))
    n = len(states)
    return NewJobRows(jobs, (list(ids), [1] * n, [ENQUEUED_TOPIC] * n, states), outcomes)


_NO_JOB = UUID(int=0)
_NO_JOB_TEXT = str(_NO_JOB)


def message_parts(customer_id: str, queue: str, priority: int) -> list[str] | None:
    """A new job's message body (``encode_message``) in three parts around its id's text,
    which it holds twice (``job_id`` and the dedup key ``<id>:v1``); ``None`` when the
    customer or queue holds the placeholder id's text itself."""
    body = encode_message(JobMessage(
        job_id=_NO_JOB, attempt=0, customer_id=customer_id, queue=queue,
        dedup_key=f"{_NO_JOB}:v1", priority=priority,
    ))
    parts = body.split(_NO_JOB_TEXT)
    return parts if len(parts) == 3 else None


PARTS_MOST = 1024
"""At most this many shapes' :func:`message_parts` are kept (then they are dropped
together): made once per customer, queue and priority, not once per batch, since a batch of
one job per call is the usual enqueue (ADR 212)."""
_PARTS: dict[tuple[str, str, int], list[str] | None] = {}


def kept_parts(shape: tuple[str, str, int]) -> list[str] | None:
    """:func:`message_parts` of ``(customer_id, queue, priority)``, kept."""
    if shape in _PARTS:
        return _PARTS[shape]
    if len(_PARTS) >= PARTS_MOST:
        _PARTS.clear()
    parts = _PARTS[shape] = message_parts(*shape)
    return parts


@dataclass(frozen=True)
class NewJobMessages:
    """The queue rows a batch of new jobs asks for, as they vary: one for each job at
    ``indexes`` (its body, queue and priority), attempt 0 of that job, sent and visible
    at ``sent_at``; message ids are given when the rows are made."""

    queue: str
    indexes: list[int]
    bodies: list[str]
    job_queues: list[str]
    priorities: list[int]
    sent_at: float

    def outbox_batch(self, job_ids: Sequence[UUID], new_id: Callable[[], UUID]) -> OutboxBatch:
        """The rows as the general outbox append takes them (``OutboxBatch.columns``):
        ``job_ids`` are the batch's, a message id from ``new_id`` each."""
        count, sent_at = len(self.indexes), self.sent_at
        columns = ([new_id() for _ in self.indexes], [job_ids[i] for i in self.indexes],
                   [0] * count, self.bodies, [sent_at] * count, [sent_at] * count,
                   self.job_queues, self.priorities)  # fmt: skip
        return OutboxBatch(self.queue, self.indexes, [], columns)


def new_job_messages(
    jobs: Sequence[NewJob], *, queue: str, now: datetime, paused: Callable[[str], bool]
) -> NewJobMessages | None:
    """``outbox_batch``'s rule for new jobs: one message per job due now (attempt 0, the
    dedup key of version 1) unless its queue is paused (asked once per queue); the bodies
    from :func:`message_parts`, kept per customer, queue and priority; no
    ``NewMessage`` per row. ``None`` when no job asks for one."""
    pauses: dict[str, bool] = {}
    indexes: list[int] = []
    texts: list[str] = []
    queues: list[str] = []
    priorities: list[int] = []
    for index, new in enumerate(jobs):
        c = new.command
        if new.run_at is not None:
            continue  # scheduled: the scheduler's Released sends it
        if c.queue not in pauses:
            pauses[c.queue] = paused(c.queue)
        if pauses[c.queue]:
            continue
        job_id = str(new.job_id)
        parts = kept_parts((c.customer_id, c.queue, c.priority))
        texts.append(encode_message(JobMessage(
            job_id=new.job_id, attempt=0, customer_id=c.customer_id, queue=c.queue,
            dedup_key=f"{job_id}:v1", priority=c.priority,
        )) if parts is None else job_id.join(parts))
        indexes.append(index)
        queues.append(c.queue)
        priorities.append(c.priority)
    if not indexes:
        return None
    return NewJobMessages(queue, indexes, texts, queues, priorities, now.timestamp())


def new_job_outbox(
    jobs: Sequence[NewJob], *, queue: str, now: datetime, paused: Callable[[str], bool],
    new_id: Callable[[], UUID],
) -> OutboxBatch | None:
    """:func:`new_job_messages` as the general outbox append's rows (a message id from
    ``new_id`` each)."""
    messages = new_job_messages(jobs, queue=queue, now=now, paused=paused)
    if messages is None:
        return None
    return messages.outbox_batch([new.job_id for new in jobs], new_id)


@runtime_checkable
class NewJobAppender(Protocol):
    """A recorder with an append for new jobs that takes only what varies (ADR 212)."""

    def append_new_jobs(
        self, ids: list[UUID], topic: str, states: list[bytes],
        messages: NewJobMessages | None,
    ) -> bool:
        """Append version 1 of each job (``topic``, its state) and the queue rows of
        ``messages`` (message ids its own) in one transaction; ``False`` when it cannot
        here (nothing written: the caller appends the general way)."""
        ...


class NewJobWriter:
    """Appends batches of new jobs as rows (see the module); ``settings`` gives the
    application's outbox queue and archive as they are set now."""

    def __init__(
        self, recorder: Any, mapper: Any, cache: JobCache, *, new_id: Callable[[], UUID],
        paused: Callable[[str, datetime], bool],
        settings: Callable[[], tuple[str | None, ArchivedEvents | None]],
    ) -> None:
        self._recorder, self._mapper, self._cache = recorder, mapper, cache
        self._new_id, self._paused, self._settings = new_id, paused, settings
        # a runtime Protocol check costs microseconds: once here, not per batch; the
        # server makes the message ids of the append for new jobs, so an application
        # that makes its own ids (a test's) appends the general way
        self._appends_rows = isinstance(recorder, RowAppender)
        self._appends_new = isinstance(recorder, NewJobAppender) and new_id is uuid.uuid4
        self.appends = 0
        """Batches appended this way (a test counts them)."""
        self.enabled = True
        """False sends every batch to the general path (``bench/enqueue_steps.py``)."""

    def execute(
        self, commands: Sequence[AnyCommand], now: datetime, otherwise: Decide
    ) -> list[Outcome | LedgerError]:
        """The batch's results: appended here when every command creates a new job,
        else decided by ``otherwise``."""
        outbox, archive = self._settings()
        ids = self._new_ids(commands, archive) if self.enabled else None
        if ids is None:
            return otherwise(commands, now, 0)
        enqueues: Any = commands  # every one an EnqueueJob (checked by _new_ids)
        try:
            batch = new_job_rows(enqueues, ids, now)
        except LedgerError:
            return otherwise(commands, now, 0)  # the general path answers it
        messages = None if outbox is None else new_job_messages(
            batch.jobs, queue=outbox, now=now, paused=lambda name: self._paused(name, now)
        )
        try:
            if not (self._appends_new and self._recorder.append_new_jobs(
                batch.rows[0], ENQUEUED_TOPIC, batch.rows[3], messages
            )):
                self._insert(batch.rows, ids, messages)
        except RecordConflictError:  # a key guessed new exists: read it (ADR 165)
            return otherwise(commands, now, 1)
        self.appends += 1
        self._cache.remember_new((new.job_id, new) for new in batch.jobs)
        return list(batch.outcomes)

    def _new_ids(
        self, commands: Sequence[AnyCommand], archive: ArchivedEvents | None
    ) -> list[UUID] | None:
        """Each command's new job id, or ``None`` when one needs the general path."""
        if not commands or self._cache.snapshots_new_jobs or not getattr(
            self._mapper, "encodes_directly", False
        ):
            return None
        ids: list[UUID] = []
        keyed: set[UUID] = set()
        fresh = iter(uuid4s(len(commands)) if self._new_id is uuid.uuid4 else ())
        for c in commands:
            if type(c) is not EnqueueJob:
                return None
            if c.idempotency_key is None:
                ids.append(next(fresh, None) or self._new_id())
                continue
            job_id = idempotent_job_id(c.customer_id, c.idempotency_key)
            if job_id in keyed or self._cache.held(job_id) is not None or (
                archive is not None and archived_job(archive, self._mapper, job_id) is not None
            ):
                return None
            keyed.add(job_id)
            ids.append(job_id)
        return ids

    def _insert(self, rows: Rows, ids: list[UUID], messages: NewJobMessages | None) -> None:
        """The general append: the events' four columns, the queue rows' eight."""
        kwargs: dict[str, Any] = {}
        if messages is not None:
            message_ids = iter(uuid4s(len(ids)) if self._new_id is uuid.uuid4 else ())
            kwargs[OUTBOX] = messages.outbox_batch(
                ids, lambda: next(message_ids, None) or self._new_id()
            )
        if self._appends_rows:
            self._recorder.insert_rows(rows, **kwargs)
            return
        self._recorder.insert_events([
            StoredEvent(originator_id=i, originator_version=v, topic=t, state=s)
            for i, v, t, s in zip(*rows, strict=True)
        ], **kwargs)
