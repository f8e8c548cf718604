"""The archive as the ledger sees it: which jobs left the hot log for a segment, and their
events read back (ADR 110).

An archived job is read-only: commands on it are refused with
:class:`~ledger.errors.JobArchived`; reads (its state, its history) come from its
segment; an idempotent enqueue of its key answers with it (the archive's index is the
tombstone that keeps its id).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, Protocol, runtime_checkable
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from ledger.errors import LedgerError
from ledger.policies.archive_due import ArchiveDue


@dataclass(frozen=True)
class SegmentRecord:
    """One segment as its manifest row records it."""

    seq: int
    name: str
    first_position: int
    last_position: int
    job_count: int
    event_count: int
    byte_count: int
    sha256: str
    previous_sha256: str
    created_at: datetime


@dataclass(frozen=True)
class ManifestSummary:
    """The manifest's totals in one query (``ledger archive status``, where rebuilds
    start): no read of every row."""

    segments: int
    jobs: int
    events: int
    bytes: int
    last_position: int
    """The highest archived log position (0 while nothing is archived)."""
    last_sha256: str | None


@dataclass(frozen=True)
class ManifestCheck:
    """What the manifest table says of itself, in one query each (``ledger audit``):
    the rows whose seq or predecessor hash does not follow the row before, and the
    archived jobs whose segment has no manifest row."""

    broken_links: list[tuple[int, str, str, str]]
    """(seq, name, the predecessor it names, the predecessor's SHA-256 or '')."""
    orphans: int


@dataclass(frozen=True)
class ArchivedJob:
    """Where one job's events are: a frame of a segment (byte offset and length)."""

    job_id: UUID
    segment: int
    offset: int
    length: int


class ArchivedEvents(Protocol):
    """The archive's reads the application needs."""

    def is_archived(self, job_id: UUID) -> bool:
        """Whether the job's events were archived (one index lookup)."""
        ...

    def events(self, job_id: UUID) -> Sequence[StoredEvent]:
        """The job's archived events, in version order (empty if it was not archived)."""
        ...

    def positions(self, job_id: UUID) -> Sequence[int]:
        """The log positions the job's archived events had, in version order."""
        ...

    def close(self) -> None: ...


class ArchiveRaced(LedgerError):
    """The log changed under the archive (a job moved on, or another archive ran); nothing
    was changed: run it again."""

    code = "archive_raced"


RawEvent = tuple[int, str, int, str, bytes]
"""(position, originator_id, version, topic, state): one row of the log."""


class StreamShape(NamedTuple):
    """One job's hot stream: its event count, versions and positions."""

    events: int
    low_version: int
    high_version: int
    first_position: int
    last_position: int


@runtime_checkable
class CopiedEvents(Protocol):
    """Archive tables that give a block of jobs' events as the database's own bytes
    (PostgreSQL's binary COPY), read in one snapshot with their shapes."""

    def snapshot(self) -> AbstractContextManager[None]: ...

    def shapes(self, ids: Sequence[UUID]) -> dict[UUID, StreamShape]: ...

    def copy_events(
        self, blocks: Sequence[Sequence[UUID]], compress: Callable[[bytes], bytes],
    ) -> list[bytes]:
        """Each block's events in position order as the database's bytes, compressed
        with ``compress`` (which may run on other threads), in block order."""
        ...


class ArchiveTables(Protocol):
    """The archive's tables in the ledger's database (one session; the caller closes it)."""

    def candidates(self, cut: datetime, limit: int) -> list[UUID]:
        """Jobs completed or cancelled before ``cut`` and not archived, oldest first."""
        ...

    def events_of(self, ids: Sequence[UUID]) -> dict[UUID, list[RawEvent]]:
        """Each job's events in the hot log, in version order."""
        ...

    def head(self) -> int: ...

    def record(
        self, segment: SegmentRecord, jobs: Sequence[ArchivedJob], versions: dict[UUID, int]
    ) -> None:
        """In one transaction: check the chain and that each job's hot stream is versions
        1..``versions[job]`` (else :class:`ArchiveRaced`, nothing changed), delete the jobs'
        events and snapshots, record the jobs and the segment."""
        ...

    def segments(self) -> list[SegmentRecord]: ...

    def latest_segment(self) -> SegmentRecord | None:
        """The manifest's last row (one index probe)."""
        ...

    def summary(self) -> ManifestSummary: ...

    def check_manifest(self) -> ManifestCheck: ...

    def archived_ids(self) -> frozenset[str]:
        """Every archived job's id (the tombstones), as text."""
        ...

    def due(self, cut: datetime) -> ArchiveDue:
        """What :meth:`candidates` would select, counted (one aggregate of the same
        scan)."""
        ...

    def locate(self, job_id: UUID) -> ArchivedJob | None: ...

    def hot_stats(self) -> tuple[int, RawEvent | None]:
        """The hot log's event count and its oldest event."""
        ...

    def close(self) -> None: ...
