"""The jobs this process holds, how a batch reads the ones it does not, and when a saved
job is snapshotted.

:class:`JobCache` keeps the most recently saved jobs (least recently saved dropped past
``size``). A batch decides on private copies of them; the jobs it needs and does not hold
are read in one query when the recorder can (``StreamLoader``; ADR 5), or handed over by
a caller that read them with a statement its batch sends anyway (:meth:`streams_read`,
the claims' candidates: ADR 208), used once. After a version conflict only the cached
jobs whose stored version moved on are forgotten (one query for their versions). A job is
snapshotted every ``snapshot_interval`` versions, from memory.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from copy import deepcopy
from typing import Any, Protocol, cast, runtime_checkable
from uuid import UUID

from eventsourcing.application import ProcessingEvent
from eventsourcing.domain import Snapshot
from eventsourcing.persistence import EventStore, Mapper, RecordConflictError, StoredEvent

from ledger.commands import AnyCommand, EnqueueJob, JobCommand
from ledger.errors import JobNotFound
from ledger.job import Job
from ledger.job_ids import named_job

PREFETCH_MIN = 2
"""A batch whose keyed enqueues need this many jobs from the store loads them in one
query, when the recorder can (``StreamLoader``); one keyed enqueue alone is guessed new
without a read (ADR 165). A job command's job (a claim, a report) is always read that way,
even alone: the repository's read of one job is two statements, its snapshot then its
events (ADR 201)."""


@runtime_checkable
class StreamLoader(Protocol):
    """A recorder that reads many aggregates' latest snapshot and later events at once."""

    def select_streams(
        self, ids: Sequence[UUID], snapshots_table: str | None
    ) -> dict[UUID, list[StoredEvent]]: ...

    def select_versions(self, ids: Sequence[UUID]) -> dict[UUID, int]: ...


class Unbuilt(Protocol):
    """A job saved by this process and not built yet (``ledger/new_jobs.py``): the cache
    builds it the first time it is asked for it."""

    def build(self) -> Job: ...


class JobCache:
    """This process's copies of recently saved jobs, and the reads and snapshots around
    them. ``load`` reads one job as stored (raising ``JobNotFound``)."""

    def __init__(
        self,
        load: Callable[[UUID], Job],
        recorder: object,
        mapper: Mapper[UUID],
        snapshots: EventStore[UUID] | None,
        *,
        size: int,
        snapshot_interval: int,
    ) -> None:
        self._load = load
        self._loader = recorder if isinstance(recorder, StreamLoader) else None
        self._mapper = mapper
        self._snapshots = snapshots
        snapshot_recorder = None if snapshots is None else snapshots.recorder
        table = getattr(snapshot_recorder, "events_table_name", None)
        self._snapshots_table = table if isinstance(table, str) else None
        self._size = size
        self._snapshot_interval = snapshot_interval
        self._jobs: OrderedDict[UUID, Job | Unbuilt] = OrderedDict()
        self._handed: Mapping[UUID, Sequence[StoredEvent]] = {}
        """Streams read by the caller for its batch's first read (:meth:`streams_read`)."""

    # -- reading --------------------------------------------------------------------------

    def keys_guessed_new(
        self, commands: Sequence[AnyCommand], jobs: dict[UUID, Job]
    ) -> set[UUID]:
        """The jobs of keyed enqueues that this cache neither holds nor has just read
        (``jobs``), taken as new in a batch's first round: a new key costs no read, and a
        key that exists makes the append conflict on its first version, so the next round
        reads it and answers as before (ADR 165). An archived job's key is still found
        (its tombstone is checked whatever this says)."""
        return {
            job_id for command in commands
            if isinstance(command, EnqueueJob) and (job_id := named_job(command)) is not None
            and job_id not in jobs and self.held(job_id) is None
        }

    def held(self, job_id: UUID) -> Job | None:
        """The cached job itself (not a copy: read it, never change it), or ``None``."""
        cached = self._jobs.get(job_id)
        if cached is None or isinstance(cached, Job):
            return cached
        job = self._jobs[job_id] = cached.build()  # built once, where it was
        return job

    def copy_of(self, job_id: UUID) -> Job | None:
        """A private copy of the cached job to decide on, or ``None`` if not held."""
        cached = self.held(job_id)
        return None if cached is None else deepcopy(cached)

    def find(self, job_id: UUID) -> Job | None:
        """A private copy of the job, from the cache or the store; ``None`` if absent."""
        cached = self.copy_of(job_id)
        if cached is not None:
            return cached
        try:
            return self._load(job_id)
        except JobNotFound:
            return None

    def prefetch(
        self, commands: Sequence[AnyCommand], fresh: bool
    ) -> tuple[dict[UUID, Job], set[UUID]]:
        """The stored jobs the batch needs and this process does not hold (all it needs
        when ``fresh``), in one query (the workers' claims name jobs they have never
        seen): the jobs found, and the ids found absent. Empty when there are too few or
        the recorder cannot."""
        loader = self._loader
        if loader is None:
            return {}, set()
        wanted: dict[UUID, None] = {}
        commanded = False
        for command in commands:
            job_id = named_job(command)
            if job_id is not None and (fresh or job_id not in self._jobs):
                wanted[job_id] = None
                commanded = commanded or isinstance(command, JobCommand)
        if not wanted or (len(wanted) < PREFETCH_MIN and not commanded):
            return {}, set()
        handed, self._handed = self._handed, {}  # used once: a later round reads again
        streams = {job_id: handed[job_id] for job_id in wanted if job_id in handed}
        unread = [job_id for job_id in wanted if job_id not in handed]
        if unread:
            streams.update(loader.select_streams(unread, self._snapshots_table))
        jobs: dict[UUID, Job] = {}
        for job_id, stored in streams.items():
            # A plain fold: project_aggregate's runtime-Protocol check of every event
            # cost a fifth of a batch of 1,000 cancels.
            job: Any = None
            for event in stored:
                job = cast(Any, self._mapper.to_domain_event(event)).mutate(job)
            if isinstance(job, Job):
                jobs[job_id] = job
        return jobs, set(wanted) - {job_id for job_id, stored in streams.items() if stored}

    @contextlib.contextmanager
    def streams_read(self, streams: Mapping[UUID, Sequence[StoredEvent]]) -> Iterator[None]:
        """Within: the batch's first read answers the jobs of ``streams`` (each one's
        latest snapshot and events after it, empty for a job with none, read by the
        caller in the transaction its batch is decided and appended in) without a read.
        A later round (after a version conflict) reads them again."""
        self._handed = streams
        try:
            yield
        finally:
            self._handed = {}

    # -- keeping and forgetting -------------------------------------------------------------

    def remember(self, job: Job) -> None:
        """Hold ``job`` as just saved, dropping the least recently saved past the size."""
        # No copy: ``job`` was decided on a private copy (or freshly loaded) and nothing
        # else holds it once the batch returns; readers of the cache copy on the way out.
        self._jobs[job.id] = job
        self._jobs.move_to_end(job.id)
        while len(self._jobs) > self._size:
            self._jobs.popitem(last=False)

    def remember_new(self, jobs: Iterable[tuple[UUID, Unbuilt]]) -> None:
        """Hold jobs just created by this process, built only if asked for (most new jobs
        are claimed by another process, or never read again here)."""
        self._jobs.update(jobs)  # new ids: appended in order
        while len(self._jobs) > self._size:
            self._jobs.popitem(last=False)

    @property
    def snapshots_new_jobs(self) -> bool:
        """True when a job's first version is due for a snapshot (an interval of 1)."""
        interval = self._snapshot_interval
        return self._snapshots is not None and interval > 0 and 1 % interval == 0

    def forget_changed(self, commands: Sequence[AnyCommand]) -> bool:
        """Drop from the cache the batch's jobs that changed in the store since they were
        cached (one query); False when the recorder cannot tell."""
        loader = self._loader
        if loader is None:
            return False
        cached: dict[UUID, int] = {}
        for command in commands:
            job_id = named_job(command)
            job = None if job_id is None else self.held(job_id)
            if job is not None:
                cached[job.id] = job.version
        if cached:
            stored = loader.select_versions(list(cached))
            for job_id, version in cached.items():
                if stored.get(job_id) != version:
                    self._jobs.pop(job_id, None)
        return True

    def forget_batch(self, commands: Sequence[AnyCommand]) -> None:
        """Drop every job the batch's commands name by id."""
        for command in commands:
            if isinstance(command, JobCommand):
                self._jobs.pop(command.job_id, None)

    def forget(self, job_id: UUID | None = None) -> None:
        """Drop one job (or all) from the cache."""
        if job_id is None:
            self._jobs.clear()
        else:
            self._jobs.pop(job_id, None)

    # -- snapshots ------------------------------------------------------------------------

    def take_snapshots(self, processing_event: ProcessingEvent[UUID]) -> None:
        """Snapshot a job every ``snapshot_interval`` versions, from memory.

        eventsourcing's default reloads the job to snapshot it and lets a failure escape
        from ``save()`` after the events were committed; a snapshot is only an
        optimisation, so this one uses the saved object and never fails the save.
        """
        if self._snapshots is None or self._snapshot_interval <= 0:
            return
        due = {
            e.originator_id
            for e in processing_event.events
            if e.originator_version % self._snapshot_interval == 0
        }  # one pass over the events: a batch of n jobs must not cost n * n comparisons
        snapshots = [
            Snapshot.take(aggregate)
            for job_id, aggregate in processing_event.aggregates.items()
            if job_id in due and isinstance(aggregate, Job)
        ]
        if snapshots:
            with contextlib.suppress(RecordConflictError):  # another process took it
                self._snapshots.put(snapshots)
