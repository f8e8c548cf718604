"""What ``ledger audit`` checks of the archive (ADR 110).

Always: the manifest rows form a chain (each names its predecessor's SHA-256), and each
segment's own index (its trailer, two ranged reads) agrees with its manifest row (seq,
predecessor, positions, counts). ``--deep``: every segment is read whole, its SHA-256
compared with the manifest and every frame decoded, and the audit folds the archived
events with the hot log, so every archived job is audited again.
"""

from __future__ import annotations

from adapters.archive import segment as segments
from adapters.archive.stores import SegmentMissing, SegmentStore
from adapters.service.archive_replay import archive_start, archived_segments, whole_log
from adapters.service.audit import ArchiveAudit
from adapters.service.backend import Backend
from ledger.audit import Violation
from ledger.ports.archive import SegmentRecord


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


def archive_audit(backend: Backend, store: SegmentStore, *, deep: bool) -> ArchiveAudit:
    """The archive's violations and archived jobs; with ``deep``, the whole log."""
    records = archived_segments(backend)
    if not records:
        return ArchiveAudit()
    violations: list[Violation] = []
    archived: set[str] = set()
    previous = ""
    for record in records:
        name = record.name
        if record.previous_sha256 != previous:
            violations.append(Violation(name, "archive_chain", (
                f"names {record.previous_sha256[:16] or 'nothing'} as its predecessor, "
                f"whose SHA-256 is {previous[:16] or 'nothing'}")))
        previous = record.sha256
        try:
            index = _index(store, record, deep)
        except (segments.SegmentCorrupt, SegmentMissing) as error:
            violations.append(Violation(name, "archive_segment", str(error)))
            continue
        differs = _disagreement(record, index)
        if differs is not None:
            violations.append(Violation(name, "archive_manifest", differs))
        archived.update(index.jobs)
    log = whole_log(backend, store) if deep and not violations else None
    return ArchiveAudit(violations, frozenset(archived), archive_start(backend), log)
