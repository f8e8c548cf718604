"""Waking the event loop once for many requests whose writes one batch settled (ADR 198).

The batch writer's thread resolves a batch's futures one after another; each request
awaited its own loop future, settled by its own ``call_soon_threadsafe``: a write to the
loop's wake-up pipe and a callback per request. Here the futures of one loop finished on
another thread are queued, and only the first of a run schedules a call, which settles
every future queued by the time it runs.
"""

from __future__ import annotations

import asyncio
import threading
import weakref


class Wakeups:
    """Futures of one event loop to settle, from any thread, in as few calls as can be."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._ready: list[asyncio.Future[None]] = []

    def settle_soon(self, done: asyncio.Future[None]) -> None:
        """Settle ``done`` (with ``None``) on its loop, with the others queued meanwhile."""
        with self._lock:
            self._ready.append(done)
            first = len(self._ready) == 1
        if first:
            self._loop.call_soon_threadsafe(self._settle_all)

    def _settle_all(self) -> None:
        with self._lock:
            ready, self._ready = self._ready, []
        for done in ready:
            if not done.done():
                done.set_result(None)


_LOOPS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Wakeups] = (
    weakref.WeakKeyDictionary()
)
_MADE = threading.Lock()


def wakeups_of(loop: asyncio.AbstractEventLoop) -> Wakeups:
    """The one :class:`Wakeups` of ``loop``."""
    found = _LOOPS.get(loop)
    if found is None:
        with _MADE:
            found = _LOOPS.get(loop)
            if found is None:
                found = _LOOPS[loop] = Wakeups(loop)
    return found
