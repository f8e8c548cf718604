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
from typing import Any

from adapters.sql.queue_rows import insert_rows, sweep_claims
from adapters.sql.sqlfile import load_sections
from adapters.sqlite.store import connect
from ledger.errors import TransportRequestFailed, TransportUnavailable
from ledger.ports.queue_store import NewMessage, StoredMessage

SQL = {name: statements[0] for name, statements in load_sections(
    "adapters.sqlite", "local_queue.sql"
).items()}


class SqliteQueueStore:
    """A :class:`~adapters.local_queue.queue.QueueStore` in a SQLite file (one connection)."""

    blocking = True

    def __init__(self, path: Path) -> None:
        self.path = path
        with _translated():
            self._conn = connect(path)
        self._lock = threading.Lock()

    def put(self, queue: str, messages: Sequence[NewMessage]) -> None:
        rows = insert_rows(queue, messages)
        with self._transaction() as conn:
            conn.executemany(SQL["insert"], rows)

    def claim(
        self, queue: str, *, now: float, limit: int, visible_until: float, max_receives: int
    ) -> list[StoredMessage]:
        params = {
            "queue": queue, "now": now, "limit": limit, "visible_until": visible_until,
            "max_receives": max_receives,
        }
        with self._transaction() as conn:
            return sweep_claims(
                lambda n: conn.execute(SQL["claim"], {**params, "limit": n}).fetchall(),
                _stored, limit,
            )

    def set_visibility(self, queue: str, seq: int, receipt: str, visible_at: float) -> bool:
        params = {"queue": queue, "seq": seq, "receipt": receipt, "visible_at": visible_at}
        with self._transaction() as conn:
            return conn.execute(SQL["set_visibility"], params).rowcount == 1

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
            rows = conn.execute(SQL["dead_letters"], {"queue": queue, "limit": limit})
            return [_stored(row) for row in rows.fetchall()]

    def delete_dead(self, queue: str, seq: int) -> bool:
        with self._transaction() as conn:
            return conn.execute(SQL["delete_dead"], {"queue": queue, "seq": seq}).rowcount == 1

    def revive(self, queue: str, message_ids: Sequence[str], now: float) -> list[StoredMessage]:
        params = {"queue": queue, "now": now, "message_ids": json.dumps(list(message_ids))}
        with self._transaction() as conn:
            return [_stored(row) for row in conn.execute(SQL["revive"], params).fetchall()]

    def close(self) -> None:
        with self._lock, _translated():
            self._conn.close()

    @contextmanager
    def _locked(self) -> Iterator[sqlite3.Connection]:
        with self._lock, _translated():
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


@contextmanager
def _translated() -> Iterator[None]:
    """sqlite3's errors as the transport's, in one place."""
    try:
        yield
    except sqlite3.OperationalError as error:
        raise TransportUnavailable(f"local queue on SQLite: {error}") from error
    except sqlite3.Error as error:
        raise TransportRequestFailed(f"local queue on SQLite: {error}") from error


def _stored(row: Any) -> StoredMessage:
    return StoredMessage(
        seq=row[0], message_id=row[1], job_id=row[2], attempt=row[3], body=row[4],
        sent_at=row[5], receive_count=row[6], receipt=row[7],
    )
