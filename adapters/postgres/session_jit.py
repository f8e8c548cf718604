"""JIT turned off once per pooled session, not once per read (issue 19, ADR 191).

``select_streams`` (the jobs' events read before a batch of claims or a scheduler round's
releases) ran ``BEGIN``, ``SET LOCAL jit = off``, the read and ``COMMIT``: four round
trips for one statement. A session-level ``SET jit = off`` sent the first time a pooled
connection serves the read makes the read one statement on the autocommit connection, its
own transaction, from then on. The ledger's pool runs short statements only (appends,
claims, reads of a few streams by id): none of them gains from JIT, and an estimate far
above ``jit_above_cost`` made PostgreSQL compile the read on every call.
"""

from __future__ import annotations

import weakref
from typing import Any

import psycopg
from psycopg import pq

NO_JIT = "SET jit = off"
_SESSIONS: weakref.WeakSet[psycopg.Connection[Any]] = weakref.WeakSet()
"""The connections whose session has JIT off (a reconnection is a new object)."""


def jit_off(conn: psycopg.Connection[Any]) -> None:
    """Turn JIT off for ``conn``'s session, once (a round trip the first time only).

    Outside a transaction only: a ``SET`` inside one would be undone by its rollback."""
    if conn in _SESSIONS:
        return
    if conn.info.transaction_status != pq.TransactionStatus.IDLE:
        conn.execute("SET LOCAL jit = off")
        return
    conn.execute(NO_JIT)
    _SESSIONS.add(conn)
