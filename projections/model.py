"""What a view is: its tables, and how a page of events folds into row changes.

A view owns one or more tables of three kinds:

- ``state``: one row per key, changed in place (the fold reads the row, changes it, and
  the whole row is upserted);
- ``counter``: integer columns that only ever add up; the fold emits deltas and the store
  adds them (``SET n = n + delta``), so counting never needs to read the row first;
- ``append``: rows that are only ever inserted (an audit trail).

Folding is pure: the runner loads the state rows a page needs (from its cache or the
store), calls the view's handlers event by event on a :class:`PageState`, and writes what
the page state collected, together with the view's position, in one transaction.
"""

from __future__ import annotations

from abc import ABC
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Literal

from ledger.errors import LedgerError
from projections.events import Body, Event, EventNotUnderstood

ColumnType = Literal["uuid", "text", "int", "float", "timestamp", "date"]
Key = tuple[Any, ...]
Row = dict[str, Any]


class Kind(StrEnum):
    STATE = "state"
    COUNTER = "counter"
    APPEND = "append"


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: ColumnType
    nullable: bool = True


@dataclass(frozen=True, slots=True)
class Index:
    """A secondary index ``{table}_{name}`` on ``columns``; partial when ``where`` is set."""

    name: str
    columns: tuple[str, ...]
    where: tuple[str, str | None] | None = None
    """Only the rows whose column (first) holds this text (second), or, when the second
    is ``None``, whose column is not null."""


@dataclass(frozen=True, slots=True)
class Table:
    """A table of a view: the one declaration its DDL on every database, its row struct
    and the decoding of its rows are derived from (or checked against).

    A counter table's non-key columns are integers starting at 0 (``DEFAULT 0``).
    """

    name: str
    kind: Kind
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    indexes: tuple[Index, ...] = ()
    """Secondary indexes, named ``{table}_{index.name}`` (renamed on a swap)."""

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        wanted = [*self.key, *(c for i in self.indexes for c in i.columns)]
        wanted += [i.where[0] for i in self.indexes if i.where]
        unknown = sorted(set(wanted) - set(names))
        if unknown or len(set(names)) != len(names) or not self.key:
            raise ValueError(f"table {self.name}: bad declaration (unknown: {unknown})")
        if self.kind is Kind.COUNTER and any(
            c.type != "int" or c.nullable for c in self.columns if c.name not in self.key
        ):
            raise ValueError(f"table {self.name}: counters are int NOT NULL")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def values(self) -> tuple[str, ...]:
        """The non-key columns."""
        return tuple(c.name for c in self.columns if c.name not in self.key)

    def key_of(self, row: Row) -> Key:
        return tuple(row[name] for name in self.key)

    def as_tuple(self, row: Row) -> tuple[Any, ...]:
        return tuple(row[name] for name in self.names)

    def starts_at_zero(self, column: Column) -> bool:
        """Whether the column is a counter (``NOT NULL DEFAULT 0``)."""
        return self.kind is Kind.COUNTER and column.name not in self.key


class ViewError(LedgerError):
    """A view cannot go on: it stops at the event named here and never skips it."""

    code = "view_stopped"

    def __init__(self, view: str, event: Event | None, reason: str, position: int = 0) -> None:
        self.view = view
        self.position = event.position if event is not None else position
        self.topic = event.topic if event is not None else ""
        self.reason = reason
        where = (
            f"event {event.position} (topic {event.topic!r}, originator "
            f"{event.originator_id} v{event.originator_version})"
            if event is not None
            else f"event {position}"
        )
        super().__init__(f"view {view!r} stopped at {where}: {reason}")

    @classmethod
    def not_understood(cls, view: str, error: EventNotUnderstood) -> ViewError:
        made = cls(view, None, error.reason, error.position)
        made.topic = error.topic
        made.args = (
            f"view {view!r} stopped at {error}",
        )
        return made


class Inconsistent(Exception):
    """The event does not fit the view's state (e.g. a job event before its Enqueued)."""


@dataclass
class PageState:
    """The rows a page of events is folded into, and what changed."""

    rows: Mapping[str, dict[Key, Row]]
    """Per state table: the cached rows (the runner has loaded every key the page needs)."""
    dirty: dict[str, set[Key]] = field(default_factory=dict)
    deleted: dict[str, set[Key]] = field(default_factory=dict)
    deltas: dict[str, dict[Key, list[int]]] = field(default_factory=dict)
    appended: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)

    def get(self, table: Table, key: Key) -> Row:
        """The row to change (marked changed); :class:`Inconsistent` if there is none."""
        row = self.rows[table.name].get(key)
        if row is None:
            raise Inconsistent(f"no {table.name} row for {_show(key)}")
        self.dirty.setdefault(table.name, set()).add(key)
        return row

    def find(self, table: Table, key: Key) -> Row | None:
        """The row if there is one, without marking it changed."""
        return self.rows[table.name].get(key)

    def put(self, table: Table, key: Key, row: Row) -> None:
        """Write a whole row (new or replacing); reading the old one is not needed."""
        self.rows[table.name][key] = row
        self.dirty.setdefault(table.name, set()).add(key)
        deleted = self.deleted.get(table.name)
        if deleted:
            deleted.discard(key)

    def create(self, table: Table, key: Key, row: Row) -> None:
        """Write a new row; :class:`Inconsistent` if one exists."""
        if key in self.rows[table.name]:
            raise Inconsistent(f"{table.name} already has a row for {_show(key)}")
        self.put(table, key, row)

    def delete(self, table: Table, key: Key) -> None:
        self.rows[table.name].pop(key, None)
        self.deleted.setdefault(table.name, set()).add(key)
        dirty = self.dirty.get(table.name)
        if dirty:
            dirty.discard(key)

    def add(self, table: Table, key: Key, **deltas: int) -> None:
        """Add to a counter row's columns."""
        counters = self.deltas.setdefault(table.name, {})
        current = counters.get(key)
        if current is None:
            current = counters[key] = [0] * len(table.values)
        for index, name in enumerate(table.values):
            amount = deltas.get(name)
            if amount:
                current[index] += amount

    def append(self, table: Table, row: tuple[Any, ...]) -> None:
        self.appended.setdefault(table.name, []).append(row)

    @property
    def changed(self) -> bool:
        return any((self.dirty, self.deleted, self.deltas, self.appended))


Handler = Callable[[Any, Event, PageState], None]


class View(ABC):
    """A read model folded from the log. Subclasses set the class attributes and
    register one handler per event body they react to (others are ignored)."""

    name: ClassVar[str]
    tables: ClassVar[tuple[Table, ...]]
    handlers: ClassVar[dict[type[Body], Handler]]

    def keys(self, events: Iterable[Event]) -> dict[str, set[Key]]:
        """The state-table rows the page will touch, so the runner can load them at once."""
        return {}

    def fold(self, events: list[Event], state: PageState) -> None:
        """Apply ``events`` in order; the first that fails raises :class:`ViewError`."""
        handlers = self.handlers
        for event in events:
            handler = handlers.get(type(event.body))
            if handler is None:
                continue
            try:
                handler(self, event, state)
            except Exception as error:
                raise ViewError(self.name, event, _reason(error)) from error

    def table(self, name: str) -> Table:
        for table in self.tables:
            if table.name == name:
                return table
        raise KeyError(name)

    @property
    def state_tables(self) -> tuple[Table, ...]:
        return tuple(t for t in self.tables if t.kind is Kind.STATE)


def _reason(error: Exception) -> str:
    if isinstance(error, Inconsistent):
        return str(error)
    return f"{type(error).__name__}: {error}"


def _show(key: Key) -> str:
    return ", ".join(str(part) for part in key)
