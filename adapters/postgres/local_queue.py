"""The local queue's store on PostgreSQL: the transport when SQS is not configured.

The messages live in the ledger's database (table ``local_queue_messages``, migration
0002). Receivers claim rows with ``FOR UPDATE SKIP LOCKED``, so any number of workers in
any number of processes take disjoint messages without waiting for each other. Connections
come from a small pool; every statement has a server-side timeout; only the writes that
must survive a server crash wait for the disk (``DURABLE``). The statements are the
named sections of ``local_queue.sql`` beside this module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import class_row, dict_row
from psycopg_pool import ConnectionPool

from adapters.postgres.errors import queue_translated
from adapters.postgres.queue_listener import LogListener, queue_channel
from adapters.sql.queue_rows import QueueRow, sweep_claims
from adapters.sql.sqlfile import load_sections
from ledger.ports.queue_store import NewMessage, StoredMessage

SQL = {name: statements[0] for name, statements in load_sections(
    "adapters.postgres", "local_queue.sql"
).items()}

DURABLE = "SET LOCAL synchronous_commit = on"
"""Sessions commit asynchronously (ADR 6): receiving, extending and deleting a message can
be lost in a server crash, which only delivers the message again (at least once; the
ledger's fencing refuses a second claim or report). Putting a message, moving one out of
the dead-letter queue and deleting a recorded dead letter must not be lost, so they wait
for the disk."""
NOTIFY = sql.SQL("NOTIFY {channel}")
"""Told after a put or a revive committed, on the queue's own channel (ADR 210)."""

CONNECT_TIMEOUT_SECONDS = 10
STATEMENT_TIMEOUT_MS = 10_000
POOL_TIMEOUT_SECONDS = 15.0


class PostgresQueueStore:
    """A :class:`~adapters.local_queue.queue.QueueStore` in PostgreSQL (a small connection pool)."""

    blocking = True

    def __init__(
        self, url: str, *, max_connections: int = 4, channel: str | None = None
    ) -> None:
        self._url = url
        self._channel = channel
        """The log's ``NOTIFY`` channel, when the queue's messages come with its appends
        (the outbox): :meth:`listen` wakes idle receivers on it and on the queue's own,
        which the writes made here notify (ADR 210)."""
        self._notify = None if channel is None else NOTIFY.format(
            channel=sql.Identifier(queue_channel(channel))
        ).as_bytes(None)  # rendered once, not at each put (ADR 192)
        with queue_translated():
            self._pool = ConnectionPool(
                url,
                min_size=1,
                max_size=max_connections,
                timeout=POOL_TIMEOUT_SECONDS,
                kwargs={
                    "autocommit": True,
                    "connect_timeout": CONNECT_TIMEOUT_SECONDS,
                    "options": (
                        f"-c statement_timeout={STATEMENT_TIMEOUT_MS} "
                        "-c synchronous_commit=off"
                    ),
                },
                check=ConnectionPool.check_connection,
                name="local-queue",
                open=True,
            )

    def put(self, queue: str, messages: Sequence[NewMessage]) -> None:
        if not messages:
            return
        columns = {
            "queue": queue,
            "message_id": [m.message_id for m in messages],
            "job_id": [m.job_id for m in messages],
            "attempt": [m.attempt for m in messages],
            "body": [m.body for m in messages],
            "sent_at": [m.sent_at for m in messages],
            "visible_at": [m.visible_at for m in messages],
            "job_queue": [m.job_queue for m in messages],
            "priority": [m.priority for m in messages],
        }
        with self._transaction(durable=True, notify=True) as conn:
            conn.execute(SQL["insert"], columns)

    def claim(
        self, queue: str, *, now: float, limit: int, visible_until: float, max_receives: int,
        job_queues: Sequence[str] | None = None,
    ) -> list[StoredMessage]:
        params: dict[str, Any] = {
            "queue": queue, "now": now, "visible_until": visible_until,
            "max_receives": max_receives, "job_queues": list(job_queues or ()),
        }
        statement = SQL["claim" if job_queues is None else "claim_queues"]
        with self._transaction() as conn, conn.cursor(row_factory=class_row(QueueRow)) as cur:
            return sweep_claims(
                lambda n: cur.execute(statement, {**params, "limit": n}).fetchall(), limit
            )

    def set_visibility(self, queue: str, seq: int, receipt: str, visible_at: float) -> bool:
        params = {"queue": queue, "seq": seq, "receipt": receipt, "visible_at": visible_at}
        with self._statement() as conn:
            return conn.execute(SQL["set_visibility"], params).rowcount == 1

    def hand_back(self, queue: str, seq: int, receipt: str, visible_at: float) -> bool:
        params = {"queue": queue, "seq": seq, "receipt": receipt, "visible_at": visible_at}
        with self._statement() as conn:
            return conn.execute(SQL["hand_back"], params).rowcount == 1

    def delete_many(self, queue: str, items: Sequence[tuple[int, str]]) -> list[bool]:
        params = {"queue": queue, "seqs": [seq for seq, _ in items],
                  "receipts": [receipt for _, receipt in items]}  # fmt: skip
        with self._statement() as conn, conn.cursor(row_factory=dict_row) as cur:
            deleted = {row["seq"] for row in cur.execute(SQL["delete_many"], params).fetchall()}
        return [seq in deleted for seq, _ in items]

    def dead_letters(self, queue: str, limit: int) -> list[StoredMessage]:
        with self._statement() as conn, conn.cursor(row_factory=class_row(QueueRow)) as cur:
            rows = cur.execute(SQL["dead_letters"], {"queue": queue, "limit": limit})
            return [row.message() for row in rows.fetchall()]

    def delete_dead(self, queue: str, seq: int) -> bool:
        with self._transaction(durable=True) as conn:
            return conn.execute(SQL["delete_dead"], {"queue": queue, "seq": seq}).rowcount == 1

    def revive(self, queue: str, message_ids: Sequence[str], now: float) -> list[StoredMessage]:
        params = {"queue": queue, "now": now, "message_ids": list(message_ids)}
        with (
            self._transaction(durable=True, notify=True) as conn,
            conn.cursor(row_factory=class_row(QueueRow)) as cur,
        ):
            return [row.message() for row in cur.execute(SQL["revive"], params).fetchall()]

    def listen(self, on_notify: Callable[[], None]) -> LogListener | None:
        """A thread calling ``on_notify`` whenever the log is appended to (each append may
        have put messages), or ``None`` without a channel; close it before the store."""
        if self._channel is None:
            return None
        return LogListener(
            lambda: psycopg.connect(
                self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS
            ),
            [self._channel, queue_channel(self._channel)], on_notify,
        )

    def close(self) -> None:
        with queue_translated():
            self._pool.close()

    @contextmanager
    def _transaction(
        self, *, durable: bool = False, notify: bool = False
    ) -> Iterator[psycopg.Connection[Any]]:
        """A transaction; ``durable`` ones wait for their commit to reach the disk;
        ``notify``: the queue's channel is told once it committed (outside it: a notifying
        transaction's commit holds a server-wide lock through its flush, ADR 165)."""
        with queue_translated(), self._pool.connection() as conn:
            with conn.transaction():
                if durable:
                    conn.execute(DURABLE)
                yield conn
            if notify and self._notify is not None:
                conn.execute(self._notify)

    @contextmanager
    def _statement(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection in autocommit for one statement: the statement is its own
        transaction, without the round trips of ``BEGIN`` and ``COMMIT``."""
        with queue_translated(), self._pool.connection() as conn:
            yield conn

