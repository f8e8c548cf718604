"""The statuses a job can be in."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """A job's status. ``completed`` and ``dead_lettered`` are terminal (until a redrive)."""

    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    DEAD_LETTERED = "dead_lettered"

    @property
    def is_terminal(self) -> bool:
        return self in (Status.COMPLETED, Status.DEAD_LETTERED)
