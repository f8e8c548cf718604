"""The base of the background parts that work through one database session."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import anyio

from projections.store import ViewStore

log = logging.getLogger(__name__)
T = TypeVar("T")


class SessionWorker:
    """A part that works through one view-store session: it runs the synchronous store and
    ledger calls off the event loop, one at a time, and can swap in a fresh session."""

    def __init__(
        self, store: ViewStore, name: str, reopen: Callable[[], ViewStore] | None = None
    ) -> None:
        self._store = store
        self._name = name
        self._reopen = reopen
        """Opens a new session when the store's connection is lost (a database restart)."""
        self._limiter = anyio.CapacityLimiter(1)

    @property
    def store(self) -> ViewStore:
        """The session it works with now (a new one after a reconnect)."""
        return self._store

    def _reconnect(self) -> bool:
        """After a failed round, a fresh session (the old one may be dead for good, e.g.
        after a database restart). True if the session was replaced."""
        if self._reopen is None:
            return False
        try:
            fresh = self._reopen()
        except Exception as error:  # still down: the next round tries again
            log.warning("%s: reconnect failed: %s", self._name, error)
            return False
        old, self._store = self._store, fresh
        with contextlib.suppress(Exception):  # the dead session has nothing to release
            old.close()
        return True

    async def _sync(self, func: Callable[..., T], *args: Any) -> T:
        return await anyio.to_thread.run_sync(partial(func, *args), limiter=self._limiter)
