"""Statements for the view tables on PostgreSQL, composed from the view's table spec.

Only identifiers vary (table, column, index names), and they go through
``psycopg.sql.Identifier``; the statement shapes are the named constants below.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from operator import itemgetter
from typing import Any

from psycopg import sql

from adapters.sql.sqlfile import load_sections
from projections.model import ColumnType, Row, Table

SCHEMA = load_sections("adapters.postgres", "schema.sql")

PG_TYPES: dict[ColumnType, sql.SQL] = {
    "uuid": sql.SQL("uuid"),
    "text": sql.SQL("text"),
    "int": sql.SQL("bigint"),
    "float": sql.SQL("double precision"),
    "timestamp": sql.SQL("timestamptz"),
    "date": sql.SQL("date"),
}

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


def create_table(table: Table, suffix: str) -> list[sql.Composed]:
    """The template of ``table`` under the name ``table + suffix``."""
    params: dict[str, sql.Identifier] = {
        "table": table_id(table, suffix),
        "pkey": sql.Identifier(f"{table.name}{suffix}_pkey"),
    }
    for index in table.indexes:
        params[index] = sql.Identifier(index_name(table, suffix, index))
    statements = SCHEMA[table.name]
    for statement in statements:
        unknown = set(re.findall(r"\{(\w+)\}", statement)) - set(params)
        if unknown:
            raise RuntimeError(f"schema.sql {table.name}: undeclared placeholders {unknown}")
    return [sql.SQL(s).format(**params) for s in statements]


def current_schema() -> list[sql.Composed]:
    """Every table of schema.sql under its own name: what the migrations must produce."""
    statements = []
    for name, section in SCHEMA.items():
        for statement in section:
            params = {
                p: sql.Identifier(name if p == "table" else f"{name}_{p}")
                for p in set(re.findall(r"\{(\w+)\}", statement))
            }
            statements.append(sql.SQL(statement).format(**params))
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
            old=sql.Identifier(index_name(table, suffix, index)),
            new=sql.Identifier(index_name(table, "", index)),
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
