"""The HTTP API's tables on SQLite (the embedded default): limiter counters and API keys.

They live in the ledger's own database file, so every process of the embedded default
shares them. A batch of hits is one ``BEGIN IMMEDIATE`` transaction (SQLite's single
writer makes it atomic), run in a worker thread; the counters' connection does not fsync
its commits (``synchronous = OFF``: a window's counts are not worth an fsync).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio.to_thread

from adapters.sql.sqlfile import load_sections
from adapters.sqlite.errors import translated
from ledger.access import KeyRecord, Role, UnknownKey
from ledger.ports.counters import Counted, Hit

SQL = {name: statements[0] for name, statements in load_sections(
    "adapters.sqlite", "http_api.sql"
).items()}

BUSY_TIMEOUT_SECONDS = 5.0


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(
        path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
    )
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    return conn


class SqliteCounters:
    """Rate-limit windows in SQLite (see :class:`ledger.ports.counters.CounterStore`)."""

    name = "sqlite"
    timeout = BUSY_TIMEOUT_SECONDS + 1.0

    def __init__(self, path: Path) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = _connect(self._path)
            self._conn.execute("PRAGMA synchronous=OFF")
        return self._conn

    def _hit(self, hits: Sequence[Hit]) -> list[Counted]:
        with self._lock, translated():
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                out = []
                for hit in hits:
                    row = conn.execute(SQL["hit"], {
                        "bucket": hit.bucket, "start": hit.window_start, "end": hit.window_end,
                        "lim": hit.limit, "n": hit.hits,
                    }).fetchone()
                    out.append(Counted(row["admitted"], row["last_admitted"]))
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return out

    def _execute(self, name: str, params: dict[str, Any]) -> int:
        with self._lock, translated():
            return self._connection().execute(SQL[name], params).rowcount

    async def hit(self, hits: Sequence[Hit]) -> list[Counted]:
        return await anyio.to_thread.run_sync(self._hit, hits)

    async def ping(self) -> None:
        await anyio.to_thread.run_sync(self._execute, "ping", {})

    async def cleanup(self, now: int) -> int:
        return await anyio.to_thread.run_sync(self._execute, "cleanup", {"now": now})

    async def close(self) -> None:
        with self._lock, translated():
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class SqliteKeyStore:
    """API key records in SQLite (see :class:`ledger.access.KeyStore`); driver errors as
    :class:`~ledger.errors.StoreError`."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def _query(self, name: str, params: dict[str, Any]) -> list[sqlite3.Row]:
        with translated():
            conn = _connect(self._path)
            try:
                return conn.execute(SQL[name], params).fetchall()
            finally:
                conn.close()

    def add(self, record: KeyRecord) -> None:
        self._query("add_key", {
            "key_id": record.key_id, "key_hash": record.key_hash, "role": str(record.role),
            "customer_id": record.customer_id, "label": record.label,
            "created_at": record.created_at.isoformat(),
            "revoked_at": record.revoked_at.isoformat() if record.revoked_at else None,
        })

    def get(self, key_id: str) -> KeyRecord | None:
        rows = self._query("get_key", {"key_id": key_id})
        return _record(rows[0]) if rows else None

    def list(self) -> list[KeyRecord]:
        return [_record(row) for row in self._query("list_keys", {})]

    def revoke(self, key_id: str, now: datetime) -> KeyRecord:
        rows = self._query("revoke_key", {"key_id": key_id, "now": now.isoformat()})
        if not rows:
            raise UnknownKey(key_id)
        return _record(rows[0])

    def any_active(self) -> bool:
        return bool(self._query("any_active_key", {})[0]["any_active"])


def _record(row: sqlite3.Row) -> KeyRecord:
    revoked_at = row["revoked_at"]
    return KeyRecord(
        key_id=row["key_id"], key_hash=row["key_hash"], role=Role(row["role"]),
        customer_id=row["customer_id"], label=row["label"],
        created_at=datetime.fromisoformat(row["created_at"]),
        revoked_at=datetime.fromisoformat(revoked_at) if revoked_at else None,
    )
