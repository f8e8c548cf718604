"""Statements for the view tables on PostgreSQL, composed from the view's table spec.

A view's ``CREATE TABLE`` and ``CREATE INDEX`` are derived from its :class:`Table`
declaration; schema.sql holds only the tables that are no view's. Only identifiers and
the partial indexes' literals vary, and they go through ``psycopg.sql``; the statement
shapes are the named constants below.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from operator import itemgetter
from typing import Any

from psycopg import sql

from adapters.sql.sqlfile import load_sections
from projections.model import Column, ColumnType, Index, Row, Table
from projections.registry import VIEWS

SCHEMA = load_sections("adapters.postgres", "schema.sql")

PG_TYPES: dict[ColumnType, sql.SQL] = {
    "uuid": sql.SQL("uuid"),
    "text": sql.SQL("text"),
    "int": sql.SQL("bigint"),
    "float": sql.SQL("double precision"),
    "timestamp": sql.SQL("timestamptz"),
    "date": sql.SQL("date"),
}

CREATE_TABLE = sql.SQL(
    "CREATE TABLE {table} (\n    {columns},\n    CONSTRAINT {pkey} PRIMARY KEY ({key})\n)"
)
COLUMN = sql.SQL("{column} {type}")
NOT_NULL = sql.SQL(" NOT NULL")
DEFAULT_ZERO = sql.SQL(" DEFAULT 0")
CREATE_INDEX = sql.SQL("CREATE INDEX {index} ON {table} ({columns})")
WHERE_EQUALS = sql.SQL(" WHERE {column} = {value}")
WHERE_NOT_NULL = sql.SQL(" WHERE {column} IS NOT NULL")
UPSERT = sql.SQL(
    "INSERT INTO {table} ({columns}) SELECT * FROM unnest({arrays}) "
    "ON CONFLICT ({key}) DO UPDATE SET {assignments}"
)
INSERT_IGNORE = sql.SQL(
    "INSERT INTO {table} ({columns}) SELECT * FROM unnest({arrays}) "
    "ON CONFLICT ({key}) DO NOTHING"
)
ARRAY_PARAM = sql.SQL("%b::{type}[]")
SET_EXCLUDED = sql.SQL("{column} = EXCLUDED.{column}")
ADD_EXCLUDED = sql.SQL("{column} = {table}.{column} + EXCLUDED.{column}")
DELETE_KEYS = sql.SQL("DELETE FROM {table} WHERE ({key}) IN (SELECT * FROM unnest({arrays}))")
SELECT_BY_KEY = sql.SQL("SELECT {columns} FROM {table} WHERE {key} = ANY(%s)")
SELECT_BY_COMPOSITE_KEY = sql.SQL(
    "SELECT {columns} FROM {table} WHERE ({key}) IN (SELECT * FROM unnest({arrays}))"
)
SELECT_ORDERED = sql.SQL("SELECT {columns} FROM {table} ORDER BY {key}")
COUNT_ROWS = sql.SQL("SELECT count(*) FROM {table}")
COPY_IN = sql.SQL("COPY {table} ({columns}) FROM STDIN")
DROP_TABLE = sql.SQL("DROP TABLE IF EXISTS {table}")
RENAME_TABLE = sql.SQL("ALTER TABLE {old} RENAME TO {new}")
RENAME_CONSTRAINT = sql.SQL("ALTER TABLE {table} RENAME CONSTRAINT {old} TO {new}")
RENAME_INDEX = sql.SQL("ALTER INDEX {old} RENAME TO {new}")


@cache
def row_values(table: Table) -> Callable[[Row], tuple[Any, ...]]:
    """A fast function from a row dict to its values in column order."""
    names = table.names
    getter = itemgetter(*names)
    if len(names) == 1:
        return lambda row: (getter(row),)
    return getter


def _ids(names: tuple[str, ...] | list[str]) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier(n) for n in names)


def table_id(table: Table, suffix: str) -> sql.Identifier:
    return sql.Identifier(table.name + suffix)


def index_name(table: Table, suffix: str, index: str) -> str:
    return f"{table.name}{suffix}_{index}"


def _column(table: Table, column: Column) -> sql.Composed:
    name, kind = sql.Identifier(column.name), PG_TYPES[column.type]
    parts: list[sql.Composable] = [COLUMN.format(column=name, type=kind)]
    if not column.nullable:
        parts.append(NOT_NULL)
    if table.starts_at_zero(column):
        parts.append(DEFAULT_ZERO)
    return sql.Composed(parts)


def _index(table: Table, suffix: str, index: Index) -> sql.Composed:
    statement = CREATE_INDEX.format(
        index=sql.Identifier(index_name(table, suffix, index.name)),
        table=table_id(table, suffix), columns=_ids(index.columns),
    )
    if index.where is None:
        return statement
    column, value = index.where
    where = (WHERE_NOT_NULL.format(column=sql.Identifier(column)) if value is None else
             WHERE_EQUALS.format(column=sql.Identifier(column), value=sql.Literal(value)))
    return sql.Composed([statement, where])


def create_table(table: Table, suffix: str) -> list[sql.Composed]:
    """The table as declared, named ``table + suffix``, and its indexes."""
    create = CREATE_TABLE.format(
        table=table_id(table, suffix),
        columns=sql.SQL(",\n    ").join(_column(table, c) for c in table.columns),
        pkey=sql.Identifier(f"{table.name}{suffix}_pkey"), key=_ids(table.key),
    )
    return [create, *(_index(table, suffix, index) for index in table.indexes)]


def current_schema() -> list[sql.SQL | sql.Composed]:
    """Every table of job-ledger: the views' as declared, the others' from schema.sql.
    This is what the numbered migrations must produce."""
    statements: list[sql.SQL | sql.Composed] = [
        sql.SQL(statement) for section in SCHEMA.values() for statement in section
    ]
    for view in VIEWS.values():
        for table in view.tables:
            statements.extend(create_table(table, ""))
    return statements


def rename_tables(table: Table, suffix: str) -> list[sql.Composed]:
    """Put ``table + suffix`` in place of ``table`` (the caller holds the transaction)."""
    live, shadow = table_id(table, ""), table_id(table, suffix)
    statements = [
        DROP_TABLE.format(table=live),
        RENAME_TABLE.format(old=shadow, new=live),
        RENAME_CONSTRAINT.format(
            table=live, old=sql.Identifier(f"{table.name}{suffix}_pkey"),
            new=sql.Identifier(f"{table.name}_pkey"),
        ),
    ]
    statements.extend(
        RENAME_INDEX.format(
            old=sql.Identifier(index_name(table, suffix, index.name)),
            new=sql.Identifier(index_name(table, "", index.name)),
        )
        for index in table.indexes
    )
    return statements


def _arrays(table: Table, names: tuple[str, ...]) -> sql.Composed:
    types = {c.name: c.type for c in table.columns}
    return sql.SQL(", ").join(ARRAY_PARAM.format(type=PG_TYPES[types[n]]) for n in names)


@cache
def upsert(table: Table, suffix: str) -> sql.Composed:
    """Write whole rows of a state table, given one array per column."""
    if not table.values:
        return INSERT_IGNORE.format(
            table=table_id(table, suffix), columns=_ids(table.names),
            arrays=_arrays(table, table.names), key=_ids(table.key),
        )
    return UPSERT.format(
        table=table_id(table, suffix), columns=_ids(table.names),
        arrays=_arrays(table, table.names), key=_ids(table.key),
        assignments=sql.SQL(", ").join(
            SET_EXCLUDED.format(column=sql.Identifier(c)) for c in table.values
        ),
    )


@cache
def add_counters(table: Table, suffix: str) -> sql.Composed:
    """Add deltas to a counter table's rows, given one array per column."""
    target = table_id(table, suffix)
    return UPSERT.format(
        table=target, columns=_ids(table.names), arrays=_arrays(table, table.names),
        key=_ids(table.key),
        assignments=sql.SQL(", ").join(
            ADD_EXCLUDED.format(column=sql.Identifier(c), table=target) for c in table.values
        ),
    )


@cache
def delete_keys(table: Table, suffix: str) -> sql.Composed:
    return DELETE_KEYS.format(
        table=table_id(table, suffix), key=_ids(table.key), arrays=_arrays(table, table.key)
    )


@cache
def select_by_key(table: Table, suffix: str) -> sql.Composed:
    if len(table.key) != 1:  # one array parameter per key column
        return SELECT_BY_COMPOSITE_KEY.format(
            columns=_ids(table.names), table=table_id(table, suffix), key=_ids(table.key),
            arrays=_arrays(table, table.key),
        )
    return SELECT_BY_KEY.format(
        columns=_ids(table.names), table=table_id(table, suffix),
        key=sql.Identifier(table.key[0]),
    )


@cache
def select_ordered(table: Table, suffix: str) -> sql.Composed:
    return SELECT_ORDERED.format(
        columns=_ids(table.names), table=table_id(table, suffix), key=_ids(table.key)
    )


@cache
def copy_in(table: Table, suffix: str) -> sql.Composed:
    return COPY_IN.format(table=table_id(table, suffix), columns=_ids(table.names))


@cache
def count_rows(table: Table, suffix: str) -> sql.Composed:
    return COUNT_ROWS.format(table=table_id(table, suffix))
