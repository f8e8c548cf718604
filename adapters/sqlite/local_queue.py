"""The local queue's store on SQLite: the embedded default's transport.

The messages live in the ledger's own database file (table ``local_queue_messages``,
migration 0002), in WAL mode with a busy timeout. Every write is one ``BEGIN IMMEDIATE``
transaction, so receivers in any number of processes take turns and never get the same
message. The statements are the named sections of ``local_queue.sql`` beside this module.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from adapters.sql.queue_rows import QueueRow, insert_rows, sweep_claims
from adapters.sql.sqlfile import load_sections
from adapters.sqlite.errors import queue_translated
from adapters.sqlite.store import connect
from ledger.ports.queue_store import NewMessage, StoredMessage

SQL = {name: statements[0] for name, statements in load_sections(
    "adapters.sqlite", "local_queue.sql"
).items()}


class SqliteQueueStore:
    """A :class:`~adapters.local_queue.queue.QueueStore` in a SQLite file (one connection)."""

    blocking = True

    def __init__(self, path: Path) -> None:
        self.path = path
        with queue_translated():
            self._conn = connect(path)
        self._lock = threading.Lock()

    def put(self, queue: str, messages: Sequence[NewMessage]) -> None:
        rows = insert_rows(queue, messages)
        with self._transaction() as conn:
            conn.executemany(SQL["insert"], rows)

    def claim(
        self, queue: str, *, now: float, limit: int, visible_until: float, max_receives: int,
        job_queues: Sequence[str] | None = None,
    ) -> list[StoredMessage]:
        params = {
            "queue": queue, "now": now, "limit": limit, "visible_until": visible_until,
            "max_receives": max_receives, "job_queues": json.dumps(list(job_queues or ())),
        }
        statement = SQL["claim" if job_queues is None else "claim_queues"]
        with self._transaction() as conn:
            return sweep_claims(
                lambda n: _rows(conn.execute(statement, {**params, "limit": n})), limit
            )

    def set_visibility(self, queue: str, seq: int, receipt: str, visible_at: float) -> bool:
        params = {"queue": queue, "seq": seq, "receipt": receipt, "visible_at": visible_at}
        with self._transaction() as conn:
            return conn.execute(SQL["set_visibility"], params).rowcount == 1

    def hand_back(self, queue: str, seq: int, receipt: str, visible_at: float) -> bool:
        params = {"queue": queue, "seq": seq, "receipt": receipt, "visible_at": visible_at}
        with self._transaction() as conn:
            return conn.execute(SQL["hand_back"], params).rowcount == 1

    def delete_many(self, queue: str, items: Sequence[tuple[int, str]]) -> list[bool]:
        with self._transaction() as conn:
            return [
                conn.execute(
                    SQL["delete"], {"queue": queue, "seq": seq, "receipt": receipt}
                ).rowcount == 1
                for seq, receipt in items
            ]

    def dead_letters(self, queue: str, limit: int) -> list[StoredMessage]:
        with self._locked() as conn:
            rows = _rows(conn.execute(SQL["dead_letters"], {"queue": queue, "limit": limit}))
            return [row.message() for row in rows]

    def delete_dead(self, queue: str, seq: int) -> bool:
        with self._transaction() as conn:
            return conn.execute(SQL["delete_dead"], {"queue": queue, "seq": seq}).rowcount == 1

    def revive(self, queue: str, message_ids: Sequence[str], now: float) -> list[StoredMessage]:
        params = {"queue": queue, "now": now, "message_ids": json.dumps(list(message_ids))}
        with self._transaction() as conn:
            return [row.message() for row in _rows(conn.execute(SQL["revive"], params))]

    def close(self) -> None:
        with self._lock, queue_translated():
            self._conn.close()

    @contextmanager
    def _locked(self) -> Iterator[sqlite3.Connection]:
        with self._lock, queue_translated():
            yield self._conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._locked() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")


def _rows(cursor: sqlite3.Cursor) -> list[QueueRow]:
    """The cursor's rows as :class:`QueueRow`, by column name."""
    names = [column[0] for column in cursor.description]
    return [QueueRow(**dict(zip(names, row, strict=True))) for row in cursor.fetchall()]
