"""The log's listeners told of appends off the append's path (issue 19, ADR 165).

After ADR 150 an append is one statement and its commit; the ``NOTIFY`` that wakes the
log's listeners (the projection runner, ``LISTEN`` in ``store.py``) had to stay out of the
appending transaction (PostgreSQL serialises the commits of notifying transactions), so
every append paid a second round trip and a second server transaction for it. Here the
append only pokes a :class:`Notifier`; one thread per process sends the ``NOTIFY``. A poke
that comes while a ``NOTIFY`` is being sent asks for one more after it, so the last append
is always followed by a ``NOTIFY`` sent after its commit, and a burst of appends from many
threads costs one or two. Listeners poll as well (``poll_interval``): a ``NOTIFY`` that
fails (the server is down) is only logged.

After each ``NOTIFY`` the thread waits :data:`GAP_SECONDS` before the next (ADR 188): one
client enqueueing one job per transaction poked once per append, so the process paid a
second statement (its pool checkout, send and CPU, about 60 µs per enqueue) and the
server a second transaction for nearly every append; now at most one per gap, and the
last append is still followed by one sent after its commit, at most a gap later.

A poke may allow its ``NOTIFY`` to come later (``within`` seconds, ADR 203): the thread
then waits until the earliest time any pending poke allows, so the pokes of that while
share one send; a poke that allows nothing cuts the wait short. The claims' transactions
(``claims.py``) allow the listeners' own linger after a small page (25 ms), so a worker
sends at most one ``NOTIFY`` per linger instead of one per batch of claims and reports.

A poke that allows no wait and finds a prompt send pending (``wanted`` and ``hurry`` both
set) returns at once, without the lock (ADR 212): the thread clears ``wanted`` under the
lock just before it sends, so a poke that still saw it set was made before that send
starts, after the poker's commit. Enqueues of one job per call poke thousands of times a
second, and most find a send pending.

Sends go on a connection the thread keeps while it runs (ADR 206,
:mod:`adapters.postgres.notify_connection`), let go (``on_idle``) when the thread ends.

The thread starts at the first poke of a process (again in a forked child, which inherits
no threads) and ends after :data:`IDLE_SECONDS` without a poke, so a closed application
leaves no thread behind for long.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

IDLE_SECONDS = 5.0
GAP_SECONDS = 0.002
"""The least time between two ``NOTIFY``s of a process: listeners wake at most this late."""


class Notifier:
    """Sends ``send()`` on its own thread after each :meth:`poke`, coalescing pokes."""

    def __init__(
        self,
        send: Callable[[], object],
        idle_seconds: float = IDLE_SECONDS,
        gap_seconds: float = GAP_SECONDS,
        on_idle: Callable[[], object] | None = None,
    ):
        self._send = send
        self._on_idle = on_idle
        self._idle, self._gap = idle_seconds, gap_seconds
        self._guard = threading.Lock()
        self._wanted = threading.Event()
        self._hurry = threading.Event()
        """Set by a poke that allows no wait: a lenient wait ends at once."""
        self._due = math.inf
        """The earliest time (``time.monotonic``) a pending poke wants its send by."""
        self._owner = os.getpid()  # the process whose locks these are
        self._running = False
        self.sent = 0

    def poke(self, within: float = 0.0) -> None:
        """Ask for one ``send()`` that starts after now, by ``within`` seconds from now
        (plus the gap) at the latest."""
        if within <= 0 and self._hurry.is_set() and self._wanted.is_set() and (
            self._owner == os.getpid()
        ):
            return  # a prompt send is pending: see the module (ADR 212)
        if self._owner != os.getpid():  # a forked child: the parent's locks are not ours
            self._guard, self._wanted = threading.Lock(), threading.Event()
            self._hurry, self._due = threading.Event(), math.inf
            self._owner, self._running = os.getpid(), False
        due = time.monotonic() + within if within > 0 else -math.inf
        with self._guard:  # the same lock as an idle thread's decision to end (see _run)
            self._due = min(self._due, due)
            if within <= 0:
                self._hurry.set()
            self._wanted.set()
            if self._running:
                return
            self._running = True
        threading.Thread(target=self._run, name="ledger-log-notifier", daemon=True).start()

    def _run(self) -> None:
        while True:
            if not self._wanted.wait(self._idle):
                with self._guard:
                    ending = not self._wanted.is_set()
                    if ending:  # idle: end; the next poke starts another
                        self._running = False
                if ending:
                    self._idle_done()  # outside the guard: a poke meanwhile is not held up
                    return
            self._wait_until_due()
            try:
                self._send()
                self.sent += 1
            except Exception as error:  # the listeners poll too: never let this thread die
                log.info("NOTIFY after an append failed: %s", error)
            if self._gap:  # the pokes meanwhile coalesce into the next send (ADR 188)
                time.sleep(self._gap)

    def _wait_until_due(self) -> None:
        """Wait while every pending poke allows it (ADR 203), then take them all."""
        while True:
            with self._guard:
                delay = self._due - time.monotonic()
                if delay <= 0 or self._hurry.is_set():
                    self._due = math.inf
                    self._hurry.clear()
                    self._wanted.clear()
                    return
            self._hurry.wait(delay)

    def _idle_done(self) -> None:
        """The thread is ending: let go of what its sends kept (a connection: ADR 206)."""
        if self._on_idle is not None:
            try:
                self._on_idle()
            except Exception as error:  # never let the ending thread raise
                log.info("releasing the notifier's connection failed: %s", error)
