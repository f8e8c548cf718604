"""Reading ``queue_controls``: each controlled queue's pause, cap and running slots."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec

from projections.queries import ReadDatabase, RowShape
from projections.queue_controls import QUEUE_CONTROLS


class QueueControl(msgspec.Struct, frozen=True):
    """One controlled queue (``paused`` is 0 or 1; ``max_running`` ``None``: no cap)."""

    queue_id: UUID
    queue: str
    paused: int
    paused_by: str | None
    paused_reason: str | None
    paused_at: datetime | None
    max_running: int | None
    running: int


ROWS = RowShape(QUEUE_CONTROLS, QueueControl)


class QueueControlQueries:
    def __init__(self, db: ReadDatabase) -> None:
        self.db = db

    def all(self) -> list[QueueControl]:
        """Every queue an operator ever controlled, by name."""
        return ROWS.decode_all(self.db.query("queue_controls.all", {}))
