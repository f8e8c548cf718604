"""When an archive round is worth a segment (ADR 110, as-built notes: segments that do
not pile up).

``ledger serve`` runs an archive round every few minutes. Under steady load every round
has a few jobs that ended just before the cut, and recording a segment for each would
give about 105,000 segments a year, each one a manifest row, a file (an S3 object) and
a read for every path that walks the archive. A round archives only when enough events
would move to be worth a segment, or when what waits has waited long enough (so a quiet
ledger still archives, at most ``max_wait`` late).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class ArchiveDue:
    """The jobs an archive with this cut would select: how many, their events (each
    job's version in ``job_status``), and when the oldest of them ended."""

    jobs: int
    events: int
    oldest_finished_at: datetime | None


def worth_a_segment(
    due: ArchiveDue, *, cut: datetime, min_events: int, max_wait: timedelta
) -> bool:
    """At least ``min_events`` would move, or the oldest job due ended more than
    ``max_wait`` before the cut."""
    if due.jobs == 0 or due.oldest_finished_at is None:
        return False
    return due.events >= min_events or due.oldest_finished_at < cut - max_wait
