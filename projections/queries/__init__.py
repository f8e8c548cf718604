"""The read side: one small query module per view, used by the CLI, ``/health`` and the
policies, so nobody writes SQL against the view tables anywhere else.

Each module asks its store for named queries (the SQL is in the store's ``queries.sql``,
one per database) and reads the rows by column name. A view table's whole rows become a
msgspec struct through a :class:`RowShape`, which checks the struct against the table's
declaration once (names, order, types, nullability) when the module is imported.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any, Generic, Protocol, TypeVar
from uuid import UUID

import msgspec

from projections.model import ColumnType, Table

QueryRow = dict[str, Any]
"""A result row by column name."""

S = TypeVar("S", bound=msgspec.Struct)

PYTHON_TYPES: dict[ColumnType, type] = {
    "uuid": UUID, "text": str, "int": int, "float": float, "timestamp": datetime, "date": date,
}
"""The Python type of each column type (``T | None`` where the column is nullable)."""


class ReadDatabase(Protocol):
    """A store that runs named read-side queries."""

    backend: str

    def query(self, name: str, params: Mapping[str, Any]) -> list[QueryRow]: ...


def disagreements(
    table: Table, struct: type[msgspec.Struct], json: Iterable[str] = ()
) -> list[str]:
    """How ``struct`` differs from ``table``'s columns (empty when they agree). Columns in
    ``json`` hold JSON text and may be any type in the struct."""
    fields = msgspec.structs.fields(struct)
    found = [f.name for f in fields]
    if found != list(table.names):
        return [f"fields {found} are not the columns {list(table.names)}"]
    out = []
    skip = set(json)
    for column, field in zip(table.columns, fields, strict=True):
        wanted: Any = PYTHON_TYPES[column.type]
        if column.nullable:
            wanted = wanted | None
        if column.name not in skip and field.type != wanted:
            out.append(f"{column.name}: {field.type} is not {wanted}")
    return out


class RowShape(Generic[S]):
    """The whole rows of a view table as ``struct``, decoded by column name."""

    def __init__(self, table: Table, struct: type[S], *, json: tuple[str, ...] = ()) -> None:
        wrong = disagreements(table, struct, json)
        if wrong:
            raise TypeError(f"{struct.__name__} disagrees with table {table.name}: {wrong}")
        self.table = table
        self.struct = struct
        self.json = json

    def decode(self, row: Mapping[str, Any]) -> S:
        """One row (uuid, time and date text converted; JSON columns parsed)."""
        if self.json:
            row = {**row, **{n: msgspec.json.decode(row[n]) if row[n] else None for n in self.json}}
        return msgspec.convert(row, self.struct)

    def decode_all(self, rows: Iterable[Mapping[str, Any]]) -> list[S]:
        return [self.decode(row) for row in rows]
