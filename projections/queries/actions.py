"""Reading ``actions``: the bulk actions not finished, from the index on ``state``."""

from __future__ import annotations

from uuid import UUID

from projections.queries import ReadDatabase


class ActionQueries:
    def __init__(self, db: ReadDatabase) -> None:
        self.db = db

    def unfinished(self) -> list[UUID]:
        """The actions running (or killed mid-run) or interrupted, oldest first."""
        rows = self.db.query("actions.unfinished", {})
        return [UUID(str(row["action_id"])) for row in rows]
