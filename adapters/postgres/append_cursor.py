"""The append's cursor, kept with its pooled connection (issue 19, ADR 187).

psycopg caches the dumpers it picked for a query's parameters in the cursor's
transformer. A new cursor per append chose the four array dumpers again on every call
(``ListDumper.get_key`` then ``upgrade`` per array): most of a one-job enqueue's client
CPU beyond the statement itself. The cursor is kept on the connection and reused by the
next append on that connection; a connection is used by one thread at a time (the pool),
and a closed connection's cursor is closed with it, so a new one is made then.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import tuple_row

ATTRIBUTE = "_ledger_append_cursor"


def append_cursor(conn: psycopg.Connection[Any]) -> psycopg.Cursor[tuple[Any, ...]]:
    """The cursor of ``conn``'s appends: the one kept with it, or a new one kept now."""
    curs: psycopg.Cursor[tuple[Any, ...]] | None = getattr(conn, ATTRIBUTE, None)
    if curs is None or curs.closed:
        curs = conn.cursor(row_factory=tuple_row)
        setattr(conn, ATTRIBUTE, curs)
    return curs
