"""A page of every view, its rows and positions, in one pipelined transaction (issue 19,
ADR 200).

The page's one transaction (``projections/page_commit.py``, ADR 190) still waited for
the server after each statement: ``BEGIN``, the positions' compare-and-set, one
statement per view table with rows (about ten on an end-to-end page), the queue
history's ``COPY`` (two exchanges) and ``COMMIT``, each a round trip, and each statement
made a new cursor that composed it to bytes and chose its array parameters' dumpers
again. Here the statements between ``BEGIN`` and ``COMMIT`` are queued in libpq's
pipeline mode and the server is waited for once for all of them (the positions'
compare-and-set first, as before, so the tracking rows are locked before the tables, the
order of a rebuild's swap; its row count decides whether the page commits): three waits
per page of up to ``COPY_FROM`` queue history rows. Each statement runs on a cursor kept
for it on the connection, with its bytes rendered once (ADR 192's ``kept_cursor``); the
appended rows go in as one ``INSERT ... SELECT FROM unnest`` (``COPY`` cannot be
pipelined), or by ``COPY`` after the pipeline when there are many.

Any error the server answers (rows it refuses, a lost connection) fails the pipeline and
rolls the transaction back, as before; the caller then writes the page view by view.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from functools import cache
from typing import Any

import psycopg
from psycopg import sql

from adapters.postgres import ddl
from adapters.postgres.append_cursor import kept_cursor, rendered
from projections.model import Kind, PageState, Table, View

COPY_FROM = 100
"""An append table's rows past this many go by COPY after the pipeline: psycopg dumps
COPY rows in C, an array parameter element by element in Python (a burn-down's pages of
1,000 events cost ``ledger serve`` and PostgreSQL more CPU as one INSERT from unnest)."""
INSERT_ROWS = sql.SQL("INSERT INTO {table} ({columns}) SELECT * FROM unnest({arrays})")


class Moved(Exception):
    """A view's position was not where the page expected it: the transaction rolled
    back."""


def supported() -> bool:
    """Pipeline mode needs libpq 14 or later."""
    return psycopg.Pipeline.is_supported()


@cache
def insert_rows(table: Table, suffix: str) -> sql.Composed:
    """Append rows to an append-only table, given one array per column."""
    return INSERT_ROWS.format(
        table=ddl.table_id(table, suffix),
        columns=sql.SQL(", ").join(sql.Identifier(n) for n in table.names),
        arrays=sql.SQL(", ").join(
            ddl.ARRAY_PARAM.format(type=ddl.PG_TYPES[c.type]) for c in table.columns
        ),
    )


def commit_page(
    conn: psycopg.Connection[Any], transaction: Callable[[], AbstractContextManager[None]],
    writes: Sequence[tuple[View, PageState]], suffix: str, *,
    advance: tuple[str, tuple[Any, ...]], views: int,
) -> bool:  # fmt: skip
    """``advance`` (the positions' compare-and-set), then every view's rows, in one
    ``transaction`` on ``conn``, the statements pipelined between its ``BEGIN`` and
    ``COMMIT``: three waits for the server. False, rolled back, unless ``advance`` moved
    ``views`` rows."""
    statement, params = advance
    moving = kept_cursor(conn, statement)
    try:
        with transaction():
            with conn.pipeline():  # the positions first: their rows' locks before the
                moving.execute(statement, params)  # tables', as a rebuild's swap takes them
                queue_rows(conn, writes, suffix)
            if moving.rowcount != views:
                raise Moved()
            copy_rows(conn, writes, suffix)
    except Moved:
        return False
    return True


def queue_rows(conn: psycopg.Connection[Any], writes: Sequence[tuple[View, PageState]],
               suffix: str) -> None:  # fmt: skip
    """Execute every view's row statements on ``conn`` (pipelined by the caller), each on
    the cursor kept for it."""
    for view, state in writes:
        for table in view.tables:
            for composed, args in statements(table, suffix, state):
                query = rendered(composed, conn)
                kept_cursor(conn, query).execute(query, args)


def copy_rows(conn: psycopg.Connection[Any], writes: Sequence[tuple[View, PageState]],
              suffix: str) -> None:  # fmt: skip
    """COPY the append tables' rows past :data:`COPY_FROM` (after the pipeline)."""
    for view, state in writes:
        for table in view.tables:
            copy_table(conn, table, suffix, state)


def copy_table(
    conn: psycopg.Connection[Any], table: Table, suffix: str, state: PageState,
    copy_from: int = COPY_FROM,
) -> None:
    """COPY ``table``'s appended rows in ``state`` when they are more than ``copy_from``
    (0: any; the rest went in by :func:`statements`' INSERT)."""
    appended = state.appended.get(table.name) if table.kind is Kind.APPEND else None
    if appended and len(appended) > copy_from:
        statement = rendered(ddl.copy_in(table, suffix), conn)
        with conn.cursor() as cur, cur.copy(statement) as copy:
            for row in appended:
                copy.write_row(row)


def statements(
    table: Table, suffix: str, state: PageState, copy_from: int = COPY_FROM
) -> list[tuple[sql.Composed, list[list[Any]]]]:
    """The statements and array parameters of ``table``'s rows in ``state``; appended
    rows only when at most ``copy_from`` (more go by :func:`copy_table`)."""
    name, out = table.name, []
    if table.kind is Kind.STATE:
        deleted = state.deleted.get(name)
        if deleted:
            out.append((ddl.delete_keys(table, suffix), columns(list(deleted))))
        dirty = state.dirty.get(name)
        if dirty:
            rows, values = state.rows[name], ddl.row_values(table)
            tuples = [values(rows[k]) for k in dirty if k in rows]
            if tuples:
                out.append((ddl.upsert(table, suffix), columns(tuples)))
    elif table.kind is Kind.COUNTER:
        deltas = state.deltas.get(name)
        if deltas:
            tuples = [(*k, *v) for k, v in deltas.items()]
            out.append((ddl.add_counters(table, suffix), columns(tuples)))
    else:
        appended = state.appended.get(name)
        if appended and len(appended) <= copy_from:
            out.append((insert_rows(table, suffix), columns(list(appended))))
    return out


def columns(rows: list[tuple[Any, ...]]) -> list[list[Any]]:
    """Row tuples as one list per column (the parameters of an ``unnest`` statement)."""
    return [list(column) for column in zip(*rows, strict=True)]
