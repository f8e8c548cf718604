"""The notifier's own connection (issue 19, ADR 206).

The log's ``NOTIFY`` is sent by one thread per process (:mod:`adapters.postgres.notifier`).
It used to check a connection out of the application's pool for every send: the pool's
checkout and return, the type-adapter check of eventsourcing's ``get_connection``, and a
new cursor, about as much client CPU as the append it follows (a profile of four clients
enqueueing one job per transaction put the notifier's thread at 14% of the process's
samples). Here the thread keeps one autocommit connection of its own while it runs, with
the statement's cursor kept (ADR 192), and closes it when the thread ends for want of
pokes, so an idle process holds no extra connection. The pool is left to the appends: a
pool of one connection is never held by the notifier.

A send that fails closes the connection (the next one connects again) and raises, so the
notifier logs it as before; a forked child never uses its parent's connection.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from typing import Any

import psycopg

from adapters.postgres.append_cursor import kept_cursor, rendered

Connect = Callable[[], psycopg.Connection[Any]]


class NotifyConnection:
    """Sends one statement on a connection of its own, made at the first send."""

    def __init__(self, connect: Connect, statement: Any) -> None:
        self._connect = connect
        self._statement = statement
        self._conn: psycopg.Connection[Any] | None = None
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._closed = False
        self.connects = 0

    def send(self) -> None:
        """The statement, on the kept connection (connected again when needed)."""
        with self._lock:
            conn = self._current()
            try:
                query = rendered(self._statement, conn)
                kept_cursor(conn, query).execute(query)
            except Exception:
                self._drop()
                raise

    def release(self) -> None:
        """Close the connection; the next send connects again (the thread went idle)."""
        with self._lock:
            self._drop()

    def close(self) -> None:
        """Close the connection for good: its application closed (sends then fail)."""
        with self._lock:
            self._closed = True
            self._drop()

    def _current(self) -> psycopg.Connection[Any]:
        if self._closed:
            raise psycopg.OperationalError("the application's recorder is closed")
        if self._pid != os.getpid():  # a forked child: the parent's socket is not ours
            self._conn, self._pid = None, os.getpid()
        if self._conn is None or self._conn.closed:
            self._conn = self._connect()
            self.connects += 1
        return self._conn

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and self._pid == os.getpid():
            with contextlib.suppress(psycopg.Error):  # a broken one: nothing left to do
                conn.close()
