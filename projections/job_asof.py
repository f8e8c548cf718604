"""One job as of a moment, and its state after each of its events (issue 16, ADR 90).

A job's events are its own stream, so the job as of a log position is its stream folded
up to its last event at or before that position: the store names that event's version
(:meth:`~projections.store.ViewStore.stream_version_at`) and the ledger's repository
rebuilds the job at that version from its nearest snapshot (every
``LEDGER_SNAPSHOT_INTERVAL`` versions), so the cost does not grow with the job's length.
A time is first cut to a position (:func:`projections.asof.resolve`). Nothing is written.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.application import AggregateNotFoundError

from ledger.application import JobLedger
from ledger.errors import JobNotFound
from ledger.job import Job
from projections.asof import Moment, resolve
from projections.queries.job_status import JobStatus, status_of_job
from projections.store import ViewStore
from projections.timeline import event_name

MAX_STATES = 500
"""The most states one page of :func:`job_states` holds."""


class JobNotYetEnqueued(JobNotFound):
    """The job was not enqueued yet at that moment."""

    code = "job_not_yet_enqueued"

    def __init__(self, job_id: UUID, moment: str, position: int) -> None:
        super().__init__(job_id)
        self.args = (f"job {job_id} was not enqueued yet as of {moment} (position {position})",)


class JobAsOf(msgspec.Struct, frozen=True):
    """A job as it was at a log position."""

    as_of: str
    """The moment as given (``@POSITION`` or a time)."""
    position: int
    """The log cut: the greatest position at or before the moment."""
    version: int
    """The job's last event at or before the cut."""
    job: JobStatus

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = msgspec.to_builtins(self)
        return data


class JobState(msgspec.Struct, frozen=True):
    """The job right after one of its events."""

    version: int
    event: str
    recorded_at: datetime
    job: JobStatus


class JobStates(msgspec.Struct, frozen=True):
    """A page of a job's states, oldest first; ``next_after`` continues it (``None`` at
    the end)."""

    job_id: UUID
    states: list[JobState]
    next_after: int | None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = msgspec.to_builtins(self)
        return data


def job_as_of(store: ViewStore, ledger: JobLedger, job_id: UUID, moment: Moment) -> JobAsOf:
    """The job as of ``moment``: :class:`JobNotYetEnqueued` if it did not exist yet,
    :class:`JobNotFound` if it never did, ``BeyondHead`` for a position past the log."""
    position = resolve(store, moment)
    version = store.stream_version_at(job_id, position)
    if version == 0 and ledger.archive is not None and ledger.archive.is_archived(job_id):
        version = sum(1 for p in ledger.archive.positions(job_id) if p <= position)  # ADR 110
        if version == 0:
            raise JobNotYetEnqueued(job_id, moment.text, position)
    elif version == 0:
        if store.stream_version_at(job_id, store.head()) == 0:
            raise JobNotFound(job_id)
        raise JobNotYetEnqueued(job_id, moment.text, position)
    job = job_at(ledger, job_id, version)
    return JobAsOf(as_of=moment.text, position=position, version=version, job=status_of_job(job))


def job_at(ledger: JobLedger, job_id: UUID, version: int) -> Job:
    """The job after its event ``version`` (from its nearest snapshot)."""
    try:
        job: Job = ledger.repository.get(job_id, version=version, projector_func=_project)
    except AggregateNotFoundError:
        archived = [e for e in ledger.history(job_id) if e.originator_version <= version]
        return _project(None, archived) or _not_found(job_id)  # archived (ADR 110)
    return job


def _not_found(job_id: UUID) -> Job:
    raise JobNotFound(job_id)


def _project(job: Job | None, events: Iterable[Any]) -> Job | None:
    """eventsourcing's ``project_aggregate`` without its check of every event against a
    runtime Protocol, which costs ten times the fold itself (a job's stream holds only
    its own events, each with ``mutate``)."""
    for event in events:
        job = event.mutate(job)
    return job


def job_states(ledger: JobLedger, job_id: UUID, *, after: int = 0, limit: int = 100) -> JobStates:
    """The job's state after each of its events ``after + 1 .. after + limit`` (at most
    :data:`MAX_STATES`), from its nearest snapshot at or before ``after``."""
    limit = max(1, min(limit, MAX_STATES))
    after = max(0, after)
    job: Job | None = job_at(ledger, job_id, after) if after else None
    events = list(ledger.events.get(job_id, gt=after, lte=after + limit + 1)) or [
        e for e in ledger.history(job_id) if after < e.originator_version <= after + limit + 1
    ]  # an archived job's (ADR 110); history raises JobNotFound for an unknown job
    if job is None and not events:
        raise JobNotFound(job_id)
    states = []
    for event in events[:limit]:
        if not isinstance(event, Job.Event):  # pragma: no cover - a job's stream
            continue
        job = event.mutate(job)
        assert job is not None
        states.append(JobState(
            version=event.originator_version, event=event_name(event),
            recorded_at=event.timestamp, job=status_of_job(job),
        ))
    more = len(events) > limit
    return JobStates(
        job_id=job_id, states=states, next_after=states[-1].version if more else None
    )
