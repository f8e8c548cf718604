"""The archive's figures: hot events, segments, bytes, the oldest hot event (``ledger
archive status``, ``/metrics``, ``/health``)."""

from __future__ import annotations

from typing import Any

from adapters.service.backend import Backend
from projections.events import EventNotUnderstood, decode


def archive_status(backend: Backend) -> dict[str, Any]:
    tables = backend.archive()
    try:
        hot, oldest = tables.hot_stats()
        manifest = tables.summary()  # one aggregate, not every manifest row
    finally:
        tables.close()
    oldest_at = None
    if oldest is not None:
        try:
            oldest_at = decode(oldest).at.isoformat()
        except EventNotUnderstood:
            oldest_at = None
    return {
        "hot_events": hot,
        "oldest_hot_position": None if oldest is None else oldest[0],
        "oldest_hot_event_at": oldest_at,
        "segments": manifest.segments,
        "archived_jobs": manifest.jobs,
        "archived_events": manifest.events,
        "archive_bytes": manifest.bytes,
        "last_segment_sha256": manifest.last_sha256,
    }
