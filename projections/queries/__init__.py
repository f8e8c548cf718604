"""The read side: one small query module per view, used by the CLI, ``/health`` and the
policies, so nobody writes SQL against the view tables anywhere else.

Each module asks its store for named queries (the SQL is in the store's ``queries.sql``,
one per database) and turns the rows into msgspec structs.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, Protocol
from uuid import UUID

from projections.events import parse_time


class ReadDatabase(Protocol):
    """A store that runs named read-side queries."""

    backend: str

    def query(self, name: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]: ...


def as_uuid(value: Any) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))


def as_time(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return parse_time(str(value))


def as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))
