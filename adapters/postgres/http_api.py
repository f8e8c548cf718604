"""The HTTP API's tables on PostgreSQL: the limiter's counters and the API keys.

The counters are written from the event loop through a few ``AsyncConnection``s kept by
the store itself (one per batch in flight): a connection that fails is dropped. A kept
connection found broken (the server restarted while it sat idle) drops every kept one and
the statement is run once more on a fresh connection, so a database that answers is never
taken for unreachable and the limiter's counts stay exact across a restart
(docs/adr/0075-dead-pooled-connections.md).
Their commits are not waited for on disk (``synchronous_commit = off``): a window's
counts are worth a round trip, not an fsync (docs/adr/0031-exact-rate-limiting.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from adapters.postgres.errors import translated
from adapters.sql.sqlfile import load_sections
from ledger.access import KeyRecord, Role, UnknownKey
from ledger.ports.counters import Counted, Hit

SQL = {name: statements[0] for name, statements in load_sections(
    "adapters.postgres", "http_api.sql"
).items()}

CONNECT_TIMEOUT_SECONDS = 2


class _ConnectionLost(psycopg.OperationalError):
    """The server closed the connection (a restart, a terminated backend)."""


class PostgresCounters:
    """Rate-limit windows in PostgreSQL (see :class:`ledger.ports.counters.CounterStore`)."""

    name = "postgresql"
    timeout = 2.0

    def __init__(self, url: str) -> None:
        self._url = url
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._cursors: dict[tuple[int, str], psycopg.AsyncCursor[Any]] = {}
        """A cursor per kept connection and statement (ADR 198): psycopg keeps the dumpers
        it chose for a statement's arrays only while one cursor runs the same query again;
        a new cursor per statement chose them again (a scan of each array) every time."""

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        conn = await psycopg.AsyncConnection.connect(
            self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS,
            application_name="job-ledger rate limiter",
        )
        await conn.execute("SET synchronous_commit = off")
        await conn.execute("SET statement_timeout = '5s'")
        return conn

    async def _run(self, name: str, params: dict[str, Any]) -> tuple[list[Any], int]:
        """Run one statement: its rows and row count. A kept connection that turns out
        broken is discarded, with the other kept ones, and the statement runs once more on
        a fresh connection. A connection that broke while idle never ran it; one cut off
        mid-statement by a crash may have committed it, and the retry then counts those
        hits twice: the limiter admits fewer, never more."""
        with translated():
            if self._idle:
                conn = self._idle.pop()
                try:
                    return await self._on(conn, name, params)
                except _ConnectionLost:
                    await self._drop_idle()  # idle through the same failure
            return await self._on(await self._connect(), name, params)

    async def _on(
        self, conn: psycopg.AsyncConnection[Any], name: str, params: dict[str, Any]
    ) -> tuple[list[Any], int]:
        """Run the statement on ``conn`` (on its kept cursor for it) and keep both; close
        the connection instead if it fails."""
        try:
            cursor = self._cursors.get((id(conn), name))
            if cursor is None:
                cursor = self._cursors[(id(conn), name)] = conn.cursor()
            await cursor.execute(SQL[name], params)
            rows = await cursor.fetchall() if cursor.description else []
        except BaseException as error:
            lost = conn.broken
            self._forget(conn)
            await conn.close()  # broken or interrupted mid-statement: never reuse it
            if lost and isinstance(error, psycopg.OperationalError):
                raise _ConnectionLost(str(error)) from error
            raise
        self._idle.append(conn)
        return rows, cursor.rowcount

    def _forget(self, conn: psycopg.AsyncConnection[Any]) -> None:
        for key in [k for k in self._cursors if k[0] == id(conn)]:
            del self._cursors[key]

    async def _drop_idle(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            self._forget(conn)
            await conn.close()

    async def hit(self, hits: Sequence[Hit]) -> list[Counted]:
        ordered = sorted(hits, key=lambda h: (h.bucket, h.window_start))
        rows, _ = await self._run("hit", {
            "buckets": [h.bucket for h in ordered],
            "starts": [h.window_start for h in ordered],
            "ends": [h.window_end for h in ordered],
            "limits": [h.limit for h in ordered],
            "counts": [h.hits for h in ordered],
        })
        answers = {
            (bucket, start): Counted(admitted, last) for bucket, start, admitted, last in rows
        }
        return [answers[(h.bucket, h.window_start)] for h in hits]

    async def ping(self) -> None:
        await self._run("ping", {})

    async def cleanup(self, now: int) -> int:
        _, deleted = await self._run("cleanup", {"now": now})
        return deleted

    async def close(self) -> None:
        with translated():
            await self._drop_idle()


class PostgresKeyStore:
    """API key records in PostgreSQL (see :class:`ledger.access.KeyStore`); driver errors as
    :class:`~ledger.errors.StoreError`."""

    def __init__(self, url: str) -> None:
        self._url = url

    def _query(self, name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        with translated(), psycopg.connect(
            self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS,
            row_factory=dict_row,
        ) as conn:
            cursor = conn.execute(SQL[name], params)
            return cursor.fetchall() if cursor.description else []

    def add(self, record: KeyRecord) -> None:
        self._query("add_key", {
            "key_id": record.key_id, "key_hash": record.key_hash, "role": str(record.role),
            "customer_id": record.customer_id, "label": record.label,
            "created_at": record.created_at, "revoked_at": record.revoked_at,
        })

    def get(self, key_id: str) -> KeyRecord | None:
        rows = self._query("get_key", {"key_id": key_id})
        return _record(rows[0]) if rows else None

    def list(self) -> list[KeyRecord]:
        return [_record(row) for row in self._query("list_keys", {})]

    def revoke(self, key_id: str, now: datetime) -> KeyRecord:
        rows = self._query("revoke_key", {"key_id": key_id, "now": now})
        if not rows:
            raise UnknownKey(key_id)
        return _record(rows[0])

    def any_active(self) -> bool:
        return bool(self._query("any_active_key", {})[0]["any_active"])


def _record(row: dict[str, Any]) -> KeyRecord:
    return KeyRecord(
        key_id=row["key_id"], key_hash=row["key_hash"], role=Role(row["role"]),
        customer_id=row["customer_id"], label=row["label"], created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )
