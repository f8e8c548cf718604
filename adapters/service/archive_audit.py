"""What ``ledger audit`` checks of the archive (ADR 110; segments that do not pile up).

Always, from the database in one query each whatever the number of segments: the
manifest rows form a chain (seq one more than the row before, each naming its
predecessor's SHA-256), and every archived job's tombstone names a recorded segment; the
archived jobs' ids come from the tombstones. Of the segment store it reads only the
newest segment's trailer (two ranged reads), compared with its manifest row: the store
answers and holds the segment the next archive chains on. Every segment was read back
whole and its SHA-256 and frames verified before its manifest row was committed, so the
shallow audit does not read the older ones again. ``--deep``: every segment is read whole,
its SHA-256 compared with the manifest, every frame decoded, its jobs compared with the
tombstones, and the audit folds the archived events with the hot log, so every archived
job is audited again.
"""

from __future__ import annotations

from collections.abc import Sequence

from adapters.archive import segment as segments
from adapters.archive.stores import SegmentMissing, SegmentStore
from adapters.service.archive_replay import archive_start, whole_log
from adapters.service.audit import ArchiveAudit
from adapters.service.backend import Backend
from ledger.audit import Violation
from ledger.ports.archive import ManifestCheck, SegmentRecord


def _index(store: SegmentStore, record: SegmentRecord, deep: bool) -> segments.Index:
    if deep:
        return segments.verify(store.get(record.name), record.sha256, deep=True)
    return segments.read_trailer(
        lambda offset, length: store.get_range(record.name, offset, length), record.byte_count
    )


def _disagreement(record: SegmentRecord, index: segments.Index) -> str | None:
    recorded = (record.seq, record.previous_sha256, record.first_position,
                record.last_position, record.job_count, record.event_count)
    found = (index.seq, index.previous_sha256, index.first_position, index.last_position,
             index.job_count, index.event_count)
    return None if recorded == found else f"its index says {found}, the manifest {recorded}"


def _manifest_violations(check: ManifestCheck) -> list[Violation]:
    violations = [
        Violation(name, "archive_chain", (
            f"seq {seq} names {named[:16] or 'nothing'} as its predecessor, "
            f"whose SHA-256 is {prior[:16] or 'nothing'}"))
        for seq, name, named, prior in check.broken_links
    ]
    if check.orphans:
        violations.append(Violation("archived_jobs", "archive_tombstone",
                                    f"{check.orphans} archived job(s) name no recorded segment"))
    return violations


def _segment_violations(
    store: SegmentStore, records: Sequence[SegmentRecord], deep: bool,
) -> tuple[list[Violation], set[str]]:
    violations: list[Violation] = []
    indexed: set[str] = set()
    for record in records:
        try:
            index = _index(store, record, deep)
        except (segments.SegmentCorrupt, SegmentMissing) as error:
            violations.append(Violation(record.name, "archive_segment", str(error)))
            continue
        differs = _disagreement(record, index)
        if differs is not None:
            violations.append(Violation(record.name, "archive_manifest", differs))
        indexed.update(index.jobs)
    return violations, indexed


def archive_audit(backend: Backend, store: SegmentStore, *, deep: bool) -> ArchiveAudit:
    """The archive's violations and archived jobs; with ``deep``, the whole log."""
    tables = backend.archive()
    try:
        latest = tables.latest_segment()
        if latest is None:
            return ArchiveAudit()
        check, archived = tables.check_manifest(), tables.archived_ids()
        records = tables.segments() if deep else [latest]
    finally:
        tables.close()
    violations = _manifest_violations(check)
    found, indexed = _segment_violations(store, records, deep)
    violations += found
    if deep and not found and indexed != archived:
        violations.append(Violation("archived_jobs", "archive_tombstone", (
            f"the segments hold {len(indexed - archived)} job(s) without a tombstone, "
            f"{len(archived - indexed)} tombstone(s) name a job no segment holds")))
    log = whole_log(backend, store) if deep and not violations else None
    return ArchiveAudit(violations, archived, archive_start(backend), log)
