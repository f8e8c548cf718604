"""Idle receivers of the local queue woken by the log's ``NOTIFY`` (ADR 210).

On PostgreSQL every message of the local queue is written with the event that asks for
it (the outbox, ADR 151: enqueue, requeue, retry, redrive), and every append is followed
by a ``NOTIFY`` on the log's channel once it committed (ADR 165). A worker whose claim
came back empty used to sleep the queue's ``poll_interval`` (100 ms) before asking
again, so a job enqueued into an idle fleet waited 50 ms on average before a worker
looked. A :class:`LogListener` keeps one connection per process ``LISTEN``ing on that
channel, in a daemon thread, and calls ``on_notify`` for each notification: the queue
wakes its waiting receivers at once. Messages written outside an append (the
dispatcher's sends: a retry's message, a paused queue's jobs; a redrive) are followed by
a ``NOTIFY`` on the queue's own channel (:func:`queue_channel`), which it ``LISTEN``s on
too: the projection runner and the dispatcher, listening on the log's, are not woken by
them. The poll stays as the fallback (a notification
missed while the connection was being reopened, a delayed message becoming visible).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from psycopg import sql

log = logging.getLogger("ledger.queue")

LISTEN = sql.SQL("LISTEN {channel}")
WAIT_SECONDS = 0.25
"""How long one wait for notifications lasts before the thread checks it should stop (a
wait on the socket, nothing sent): a worker's shutdown waits at most this for it."""
RECONNECT_SECONDS = 1.0
"""The pause before opening the connection again after it failed (the poll covers it)."""


def queue_channel(log_channel: str) -> str:
    """The channel of the local queue's own writes, beside the log's ``log_channel``."""
    return f"{log_channel}_queue"


class LogListener:
    """A daemon thread ``LISTEN``ing on ``channels`` that calls ``on_notify`` for each
    notification (from that thread: ``on_notify`` must be thread-safe and quick)."""

    def __init__(
        self, connect: Callable[[], psycopg.Connection[Any]], channels: Sequence[str],
        on_notify: Callable[[], None],
    ) -> None:
        self._connect = connect
        self._statements = [LISTEN.format(channel=sql.Identifier(c)) for c in channels]
        self._on_notify = on_notify
        self._stop = threading.Event()
        self.listening = threading.Event()
        """Set once the ``LISTEN`` is in place (tests wait for it)."""
        self._thread = threading.Thread(target=self._run, name="queue-listener", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the thread (within :data:`WAIT_SECONDS`) and close its connection."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(WAIT_SECONDS + 1.0)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with self._connect() as conn:
                    for statement in self._statements:
                        conn.execute(statement)
                    self.listening.set()
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=WAIT_SECONDS, stop_after=1):
                            self._on_notify()
            except Exception as error:  # the queue still polls: never let this thread die
                self.listening.clear()
                log.info("listening for the log's appends failed: %s (polling meanwhile)", error)
                self._stop.wait(RECONNECT_SECONDS)
