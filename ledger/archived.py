"""Archived jobs as the application reads them (ADR 110): folded from their segment's
events, never changed; a command on one is refused with :class:`JobArchived`."""

from __future__ import annotations

from typing import Any, cast
from uuid import UUID

from eventsourcing.persistence import Mapper

from ledger.errors import JobArchived, JobNotFound, LedgerError
from ledger.job import Job
from ledger.ports.archive import ArchivedEvents


def archived_job(
    archive: ArchivedEvents | None, mapper: Mapper[UUID], job_id: UUID
) -> Job | None:
    """The archived job folded from its events (read-only), or ``None``."""
    job: Any = None
    for event in [] if archive is None else archive.events(job_id):
        job = cast(Any, mapper.to_domain_event(event)).mutate(job)
    return job if isinstance(job, Job) else None


def archived_history(
    archive: ArchivedEvents | None, mapper: Mapper[UUID], job_id: UUID
) -> list[Job.Event]:
    """The archived job's events, oldest first (empty when it is not archived)."""
    stored = [] if archive is None else archive.events(job_id)
    events = (mapper.to_domain_event(e) for e in stored)
    return [e for e in events if isinstance(e, Job.Event)]


def not_in_hot_log(archive: ArchivedEvents | None, job_id: UUID) -> LedgerError:
    """A command's refusal for a job not in the hot log: archived, or not found."""
    if archive is not None and archive.is_archived(job_id):
        return JobArchived(job_id)
    return JobNotFound(job_id)
