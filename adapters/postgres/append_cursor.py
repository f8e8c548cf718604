"""The append's cursor, kept with its pooled connection (issue 19, ADR 187).

psycopg caches the dumpers it picked for a query's parameters in the cursor's
transformer. A new cursor per append chose the four array dumpers again on every call
(``ListDumper.get_key`` then ``upgrade`` per array): most of a one-job enqueue's client
CPU beyond the statement itself. A cursor is kept on the connection for each statement
(:func:`kept_cursor`, ADR 192) and reused by the next execution of that statement on that
connection; a connection is used by one thread at a time (the pool), and a closed
connection's cursor is closed with it, so a new one is made then. The statement is
rendered to bytes once too (``rendered``).
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

RENDERED: dict[int, tuple[sql.Composable, bytes]] = {}
"""Each append statement's bytes, by the statement object's id (kept with it)."""


def rendered(statement: sql.Composable, conn: psycopg.Connection[Any]) -> bytes:
    """``statement`` as the bytes psycopg sends: composed once, not on every execute
    (psycopg renders a ``Composed`` again on each call, then finds its parsed form in
    its cache by those bytes). The append's statements name only the schema, table and
    function, the same on every connection of the recorder's pool."""
    kept = RENDERED.get(id(statement))
    if kept is None or kept[0] is not statement:
        kept = RENDERED[id(statement)] = (statement, statement.as_bytes(conn))
    return kept[1]


KEPT = "_ledger_kept_cursors"


def kept_cursor(
    conn: psycopg.Connection[Any], query: str | bytes
) -> psycopg.Cursor[tuple[Any, ...]]:
    """A cursor of ``conn`` kept for ``query`` alone (ADR 192): psycopg keeps a cursor's
    chosen dumpers only while it executes the same query object again (a different one
    starts a new transformer), so a cursor shared by several statements chose them again
    on each. ``query`` is a constant or bytes from :func:`rendered`."""
    kept: dict[str | bytes, psycopg.Cursor[tuple[Any, ...]]] | None = getattr(conn, KEPT, None)
    if kept is None:
        kept = {}
        setattr(conn, KEPT, kept)
    curs = kept.get(query)
    if curs is None or curs.closed:
        curs = kept[query] = conn.cursor(row_factory=tuple_row)
    return curs
