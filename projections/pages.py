"""The log read in pages, optionally one page ahead on a thread.

A long read (a what-if replay over millions of events) spends about as long waiting for
the database as decoding and folding; :func:`prefetched` overlaps the two by reading the
next pages on a thread into a bounded queue while the caller works on the current one.
The store's session is used by that thread only while the generator runs, so the caller
must not use the same store until the generator is exhausted or closed (closing it stops
and joins the thread). Only reads.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator

from projections.events import RawRow
from projections.store import ViewStore

AHEAD = 2
"""Pages read ahead at most (bounds the memory held by the queue)."""


def pages(
    store: ViewStore, after: int, size: int, upto: int | None = None
) -> Generator[list[RawRow], None, None]:
    """The log's events after ``after`` (up to ``upto``, else the head), ``size`` at a
    time, in log order."""
    while True:
        page = store.read_events(after, size, upto)
        if not page:
            return
        yield page
        after = page[-1][0]


def prefetched(
    store: ViewStore, after: int, size: int, upto: int | None = None, ahead: int = AHEAD,
    *, name: str = "log-reader",
) -> Generator[list[RawRow], None, None]:
    """The pages of :func:`pages`, read up to ``ahead`` pages early on a thread named
    ``name``; an error of the reading thread is raised here, in the caller's thread."""
    queued: queue.Queue[list[RawRow] | BaseException | None] = queue.Queue(maxsize=ahead)
    stop = threading.Event()

    def hand(item: list[RawRow] | BaseException | None) -> bool:
        while not stop.is_set():
            try:
                queued.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for page in pages(store, after, size, upto):
                if not hand(page):
                    return
            hand(None)
        except BaseException as error:  # raised in the caller's thread
            hand(error)

    thread = threading.Thread(target=read, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = queued.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()
