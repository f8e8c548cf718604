"""The statuses a job can be in."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """A job's status. ``completed``, ``dead_lettered`` (until a redrive) and ``cancelled``
    are terminal; ``scheduled`` is accepted but not due yet (ADR 100)."""

    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    DEAD_LETTERED = "dead_lettered"
    SCHEDULED = "scheduled"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in (Status.COMPLETED, Status.DEAD_LETTERED, Status.CANCELLED)
