"""Folding a view entirely in memory: the reference the stores are tested against.

No database: the events are folded into dictionaries exactly as the runner folds a page,
which makes the folds testable on their own (tests/unit) and gives the contract tests a
third implementation to agree with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from projections.events import Event
from projections.model import Key, Kind, PageState, Row, View


@dataclass
class MemoryView:
    """A view's tables as dictionaries, fed page by page."""

    view: View
    rows: dict[str, dict[Key, Row]] = field(default_factory=dict)
    counters: dict[str, dict[Key, list[int]]] = field(default_factory=dict)
    appended: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)
    position: int = 0

    def __post_init__(self) -> None:
        for table in self.view.tables:
            if table.kind is Kind.STATE:
                self.rows.setdefault(table.name, {})
            elif table.kind is Kind.COUNTER:
                self.counters.setdefault(table.name, {})
            else:
                self.appended.setdefault(table.name, [])

    def feed(self, events: list[Event]) -> None:
        """Fold one page (raises :class:`projections.model.ViewError` like the runner)."""
        if not events:
            return
        state = PageState(self.rows)
        self.view.fold(events, state)
        for name, keys in state.deleted.items():
            for key in keys:
                self.rows[name].pop(key, None)
        for name, deltas in state.deltas.items():
            table = self.counters[name]
            for key, delta in deltas.items():
                current = table.setdefault(key, [0] * len(delta))
                for index, amount in enumerate(delta):
                    current[index] += amount
        for name, appended in state.appended.items():
            self.appended[name].extend(appended)
        self.position = events[-1].position

    def table(self, name: str) -> list[tuple[Any, ...]]:
        """A table's rows in key order, as tuples in column order."""
        spec = self.view.table(name)
        if spec.kind is Kind.STATE:
            return [spec.as_tuple(self.rows[name][k]) for k in sorted(self.rows[name])]
        if spec.kind is Kind.COUNTER:
            return [(*k, *v) for k, v in sorted(self.counters[name].items())]
        return sorted(self.appended[name])

    def dicts(self, name: str) -> list[dict[str, Any]]:
        names = self.view.table(name).names
        return [dict(zip(names, row, strict=True)) for row in self.table(name)]
