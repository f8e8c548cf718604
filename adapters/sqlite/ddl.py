"""Statements for the view tables on SQLite, composed from the view's table spec.

A view's ``CREATE TABLE`` and ``CREATE INDEX`` are derived from its :class:`Table`
declaration (a rebuild creates the indexes after the swap: SQLite cannot rename an
index); schema.sql holds only the tables that are no view's. Identifiers are quoted by
``psycopg.sql.Identifier`` (SQLite quotes identifiers the same way) and rendered once;
values are always ``?`` parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from functools import cache
from typing import Any
from uuid import UUID

from psycopg import sql

from adapters.sql.sqlfile import load_sections
from projections.model import Column, ColumnType, Index, Table
from projections.registry import VIEWS

SCHEMA = load_sections("adapters.sqlite", "schema.sql")

SQLITE_TYPES: dict[ColumnType, sql.SQL] = {
    "uuid": sql.SQL("TEXT"),
    "text": sql.SQL("TEXT"),
    "int": sql.SQL("INTEGER"),
    "float": sql.SQL("REAL"),
    "timestamp": sql.SQL("TEXT"),
    "date": sql.SQL("TEXT"),
}

CREATE_TABLE = sql.SQL("CREATE TABLE {table} (\n    {columns}\n)")
COLUMN = sql.SQL("{column} {type}")
NOT_NULL = sql.SQL(" NOT NULL")
DEFAULT_ZERO = sql.SQL(" DEFAULT 0")
INLINE_PRIMARY_KEY = sql.SQL(" PRIMARY KEY")
PRIMARY_KEY = sql.SQL("PRIMARY KEY ({key})")
CREATE_INDEX = sql.SQL("CREATE INDEX {index} ON {table} ({columns})")
WHERE_EQUALS = sql.SQL(" WHERE {column} = {value}")
WHERE_NOT_NULL = sql.SQL(" WHERE {column} IS NOT NULL")
UPSERT = sql.SQL(
    "INSERT INTO {table} ({columns}) VALUES ({marks}) "
    "ON CONFLICT ({key}) DO UPDATE SET {assignments}"
)
INSERT_IGNORE = sql.SQL("INSERT INTO {table} ({columns}) VALUES ({marks}) ON CONFLICT DO NOTHING")
INSERT = sql.SQL("INSERT INTO {table} ({columns}) VALUES ({marks})")
SET_EXCLUDED = sql.SQL("{column} = excluded.{column}")
ADD_EXCLUDED = sql.SQL("{column} = {column} + excluded.{column}")
KEY_EQUALS = sql.SQL("{column} = ?")
DELETE_KEY = sql.SQL("DELETE FROM {table} WHERE {condition}")
SELECT_BY_KEY = sql.SQL(
    "SELECT {columns} FROM {table} WHERE {key} IN (SELECT value FROM json_each(?))"
)
SELECT_BY_COMPOSITE_KEY = sql.SQL(
    "SELECT {columns} FROM {table} WHERE ({key}) IN (SELECT {parts} FROM json_each(?))"
)
SELECT_ORDERED = sql.SQL("SELECT {columns} FROM {table} ORDER BY {key}")
COUNT_ROWS = sql.SQL("SELECT count(*) FROM {table}")
DROP_TABLE = sql.SQL("DROP TABLE IF EXISTS {table}")
RENAME_TABLE = sql.SQL("ALTER TABLE {old} RENAME TO {new}")
MARK = sql.SQL("?")


def render(statement: sql.Composable) -> str:
    return statement.as_string(None)


def _ids(names: tuple[str, ...]) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier(n) for n in names)


def table_id(table: Table, suffix: str) -> sql.Identifier:
    return sql.Identifier(table.name + suffix)


def _column(table: Table, column: Column) -> sql.Composed:
    name, kind = sql.Identifier(column.name), SQLITE_TYPES[column.type]
    parts: list[sql.Composable] = [COLUMN.format(column=name, type=kind)]
    if not column.nullable:
        parts.append(NOT_NULL)
    if table.starts_at_zero(column):
        parts.append(DEFAULT_ZERO)
    if table.key == (column.name,):
        parts.append(INLINE_PRIMARY_KEY)
    return sql.Composed(parts)


def _index(table: Table, suffix: str, index: Index) -> str:
    statement = CREATE_INDEX.format(
        index=sql.Identifier(f"{table.name}{suffix}_{index.name}"),
        table=table_id(table, suffix), columns=_ids(index.columns),
    )
    if index.where is None:
        return render(statement)
    column, value = index.where
    where = (WHERE_NOT_NULL.format(column=sql.Identifier(column)) if value is None else
             WHERE_EQUALS.format(column=sql.Identifier(column), value=sql.Literal(value)))
    return render(sql.Composed([statement, where]))


def create_table(table: Table, suffix: str) -> str:
    """The CREATE TABLE of ``table`` named ``table + suffix`` (without its indexes)."""
    parts: list[sql.Composable] = [_column(table, c) for c in table.columns]
    if len(table.key) > 1:
        parts.append(PRIMARY_KEY.format(key=_ids(table.key)))
    return render(CREATE_TABLE.format(
        table=table_id(table, suffix), columns=sql.SQL(",\n    ").join(parts)
    ))


def create_indexes(table: Table, suffix: str) -> list[str]:
    return [_index(table, suffix, index) for index in table.indexes]


def current_schema() -> list[str]:
    """Every table of job-ledger: the views' as declared, the others' from schema.sql.
    This is what the numbered migrations must produce."""
    statements = [statement for section in SCHEMA.values() for statement in section]
    for view in VIEWS.values():
        for table in view.tables:
            statements.append(create_table(table, ""))
            statements.extend(create_indexes(table, ""))
    return statements


def drop_table(table: Table, suffix: str) -> str:
    return render(DROP_TABLE.format(table=table_id(table, suffix)))


def rename_table(table: Table, suffix: str) -> str:
    return render(RENAME_TABLE.format(old=table_id(table, suffix), new=table_id(table, "")))


def _marks(count: int) -> sql.Composed:
    return sql.SQL(", ").join([MARK] * count)


@cache
def upsert(table: Table, suffix: str) -> str:
    if not table.values:
        return render(INSERT_IGNORE.format(
            table=table_id(table, suffix), columns=_ids(table.names),
            marks=_marks(len(table.names)),
        ))
    return render(UPSERT.format(
        table=table_id(table, suffix), columns=_ids(table.names),
        marks=_marks(len(table.names)), key=_ids(table.key),
        assignments=sql.SQL(", ").join(
            SET_EXCLUDED.format(column=sql.Identifier(c)) for c in table.values
        ),
    ))


@cache
def add_counters(table: Table, suffix: str) -> str:
    return render(UPSERT.format(
        table=table_id(table, suffix), columns=_ids(table.names),
        marks=_marks(len(table.names)), key=_ids(table.key),
        assignments=sql.SQL(", ").join(
            ADD_EXCLUDED.format(column=sql.Identifier(c)) for c in table.values
        ),
    ))


@cache
def insert(table: Table, suffix: str) -> str:
    return render(INSERT.format(
        table=table_id(table, suffix), columns=_ids(table.names),
        marks=_marks(len(table.names)),
    ))


@cache
def delete_key(table: Table, suffix: str) -> str:
    return render(DELETE_KEY.format(
        table=table_id(table, suffix),
        condition=sql.SQL(" AND ").join(
            KEY_EQUALS.format(column=sql.Identifier(c)) for c in table.key
        ),
    ))


@cache
def select_by_key(table: Table, suffix: str) -> str:
    if len(table.key) != 1:  # the parameter is a JSON array of key arrays
        parts = sql.SQL(", ").join(
            sql.SQL(f"json_extract(value, '$[{i}]')")
            for i in range(len(table.key))
        )
        return render(SELECT_BY_COMPOSITE_KEY.format(
            columns=_ids(table.names), table=table_id(table, suffix), key=_ids(table.key),
            parts=parts,
        ))
    return render(SELECT_BY_KEY.format(
        columns=_ids(table.names), table=table_id(table, suffix),
        key=sql.Identifier(table.key[0]),
    ))


@cache
def select_ordered(table: Table, suffix: str) -> str:
    return render(SELECT_ORDERED.format(
        columns=_ids(table.names), table=table_id(table, suffix), key=_ids(table.key)
    ))


@cache
def count_rows(table: Table, suffix: str) -> str:
    return render(COUNT_ROWS.format(table=table_id(table, suffix)))


# -- values ------------------------------------------------------------------------------


def to_text_time(value: datetime | None) -> str | None:
    """A time as SQLite keeps it: UTC ISO-8601 with microseconds (text order = time order)."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _identity(value: Any) -> Any:
    return value


def _uuid_out(value: UUID | str | None) -> str | None:
    return None if value is None else str(value)


def _date_out(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def _uuid_in(value: str | None) -> str | None:
    return value  # canonical UUID text, as the views key rows


def _time_in(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _date_in(value: str | None) -> date | None:
    return None if value is None else date.fromisoformat(value)


_OUT: dict[ColumnType, Callable[[Any], Any]] = {
    "uuid": _uuid_out, "timestamp": to_text_time, "date": _date_out,
    "text": _identity, "int": _identity, "float": _identity,
}
_IN: dict[ColumnType, Callable[[Any], Any]] = {
    "uuid": _uuid_in, "timestamp": _time_in, "date": _date_in,
    "text": _identity, "int": _identity, "float": _identity,
}


@cache
def writer(table: Table) -> tuple[Callable[[Any], Any], ...]:
    """Per column: the Python value to what SQLite stores."""
    return tuple(_OUT[c.type] for c in table.columns)


@cache
def reader(table: Table) -> tuple[Callable[[Any], Any], ...]:
    """Per column: what SQLite stores back to the Python value."""
    return tuple(_IN[c.type] for c in table.columns)


def to_sqlite(
    values: tuple[Any, ...], convert: tuple[Callable[[Any], Any], ...]
) -> tuple[Any, ...]:
    return tuple(f(v) for f, v in zip(convert, values, strict=True))


def key_writer(table: Table) -> tuple[Callable[[Any], Any], ...]:
    types = {c.name: c.type for c in table.columns}
    return tuple(_OUT[types[name]] for name in table.key)
