"""The projection runner: feeds views from the log, a page per transaction, exactly once.

For each view it holds the view's lock (one runner per view across processes; a second
runner waits and takes the view over when the first dies), reads the page of events after
the view's position, folds it into row changes, and writes the changes and the new
position in one transaction, the position compared-and-set. A crash anywhere leaves
either the old position and the old rows or the new ones: nothing skipped, nothing
applied twice.

A view that fails on an event stops there (its error names the event and is recorded in
its tracking row); it is never skipped. The other views go on. That holds both when the
fold fails and when the database refuses the rows the fold made (a text it cannot hold, a
number too large for its column): the refused page is then applied again one event at a
time, so the view stops exactly at the event whose rows are refused (ADR 65).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from ledger.errors import LedgerError, StoreError, StoreUnavailable
from projections.events import Event, EventNotUnderstood, decode_page
from projections.model import Key, PageState, Row, View, ViewError
from projections.page_commit import feed_together
from projections.store import LIVE, Tracking, ViewStore

log = logging.getLogger(__name__)

Decoded = tuple[list[Event], EventNotUnderstood | None]
Write = Callable[[list[Event], PageState], None]

PAGE_SIZE = 1000
LINGER_SECONDS = 0.025
"""How long a live runner waits after a small page before reading the next (issue 19):
while events trickle in, pages of a few jobs each cost a transaction and a statement per
view table; letting them gather for this long makes the pages larger (fewer steps per
job) and adds at most this much to the views' lag. Not after an empty or a full page."""
CACHE_ROWS = 50_000
"""Rows of state tables kept between pages, per table (the runner is the only writer)."""


def default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def lock_name(view: str) -> str:
    return f"view:{view}"


class ConcurrentUpdate(Exception):
    """The view's position moved under this runner (another runner, or a rebuild swap)."""


@dataclass
class Folder:
    """Folds pages into one set of a view's tables, keeping their state rows cached."""

    store: ViewStore
    view: View
    suffix: str = LIVE
    cache_rows: int = CACHE_ROWS
    cache: dict[str, dict[Key, Row]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.forget()

    def forget(self) -> None:
        self.cache = {t.name: {} for t in self.view.state_tables}

    def fold(self, events: list[Event]) -> PageState:
        """Fold ``events`` (raises :class:`ViewError` naming the first that fails)."""
        for table_name, keys in self.view.keys(events).items():
            cached = self.cache[table_name]
            missing = [k for k in keys if k not in cached]
            if missing:
                cached.update(self.store.load(self.view.table(table_name), self.suffix, missing))
        state = PageState(self.cache)
        try:
            self.view.fold(events, state)
        except ViewError:
            self.forget()  # the cached rows are half-folded
            raise
        return state

    def trim(self) -> None:
        for cached in self.cache.values():
            excess = len(cached) - self.cache_rows
            if excess > 0:
                for key in list(_first(cached, excess + self.cache_rows // 4)):
                    del cached[key]

    def fold_until_failure(self, events: list[Event], write: Write) -> ViewError | None:
        """Fold and write ``events``; on a failing event, write those before it and
        return the failure."""
        if not events:
            return None
        try:
            state = self.fold(events)
        except ViewError as failure:
            before = [e for e in events if e.position < failure.position]
            if before:
                write(before, self.fold(before))
            return failure
        write(events, state)
        return None


def refusal(view: str, event: Event, error: StoreError) -> ViewError:
    """The view stops at ``event``: the database refused the rows it folds into."""
    return ViewError(view, event, f"the database refused its rows: {first_line(error)}")


def first_line(error: BaseException) -> str:
    """The error's message without the lines the driver adds (``CONTEXT: ...``)."""
    return storable(str(error).strip().splitlines()[0] if str(error).strip() else
                    type(error).__name__)


def storable(text: str) -> str:
    """``text`` as every store can hold it (NUL and lone surrogates escaped)."""
    escaped = text.replace("\x00", "\\x00")
    return escaped.encode("utf-8", "backslashreplace").decode("utf-8")


def write_one_by_one(folder: Folder, events: list[Event], write: Write) -> ViewError | None:
    """After the database refused a page's rows: fold and write ``events`` one at a time
    (each its own transaction), so the view stops exactly at the event whose rows are
    refused, with every event before it applied. ``None`` if none is refused now."""
    folder.forget()  # the cached rows were folded for the refused page
    for event in events:
        try:
            failure = folder.fold_until_failure([event], write)
        except StoreUnavailable:
            raise
        except StoreError as error:
            folder.forget()
            return refusal(folder.view.name, event, error)
        if failure is not None:
            return failure
    return None


def _first(mapping: dict[Key, Row], count: int) -> Iterable[Key]:
    for index, key in enumerate(mapping):
        if index >= count:
            return
        yield key


@dataclass
class Feed:
    """One view as this runner feeds it."""

    folder: Folder
    tracking: Tracking | None = None
    """Set while this runner holds the view's lock."""
    failure: str | None = None

    @property
    def view(self) -> View:
        return self.folder.view

    @property
    def held(self) -> bool:
        return self.tracking is not None


@dataclass
class Runner:
    """Feeds ``views`` from the log through ``store``."""

    store: ViewStore
    views: list[View]
    owner: str = field(default_factory=default_owner)
    page_size: int = PAGE_SIZE
    cache_rows: int = CACHE_ROWS
    feeds: list[Feed] = field(init=False)
    last_read: int = field(default=0, init=False)
    """Events in the largest page the last :meth:`step` read."""

    def __post_init__(self) -> None:
        self.feeds = [
            Feed(Folder(self.store, view, cache_rows=self.cache_rows)) for view in self.views
        ]

    # -- locks ------------------------------------------------------------------------

    def acquire(self) -> list[str]:
        """Take the locks of the views nobody feeds; returns the names newly taken."""
        taken = []
        for feed in self.feeds:
            if feed.held or feed.failure:
                continue
            if self.store.try_lock(lock_name(feed.view.name)):
                feed.tracking = self.store.tracking(feed.view.name)
                feed.folder.forget()
                taken.append(feed.view.name)
                log.info("feeding view %s from position %d", feed.view.name,
                         feed.tracking.position)
        return taken

    def release(self) -> None:
        for feed in self.feeds:
            if feed.held:
                self.store.unlock(lock_name(feed.view.name))
                feed.tracking = None

    @property
    def held(self) -> list[str]:
        return [f.view.name for f in self.feeds if f.held]

    @property
    def failures(self) -> dict[str, str]:
        return {f.view.name: f.failure for f in self.feeds if f.failure}

    # -- feeding ----------------------------------------------------------------------

    def step(self) -> int:
        """Apply at most one page to each view this runner holds; events applied.

        Views at the same position (the usual case once caught up) share one read and one
        decoding of the page.
        """
        at: dict[int, list[Feed]] = {}
        for feed in self.feeds:
            if feed.tracking is not None and not feed.failure:
                at.setdefault(feed.tracking.position, []).append(feed)
        applied = 0
        self.last_read = 0
        for position, feeds in at.items():
            page = self.store.read_events(position, self.page_size)
            if not page:
                continue
            self.last_read = max(self.last_read, len(page))
            decoded = decode_page(page)
            events, not_understood = decoded
            if len(feeds) > 1 and not_understood is None and feed_together(
                self.store, feeds, events, self.owner
            ):  # one transaction for them all (page_commit.py)
                applied += len(feeds) * (events[-1].position - position)
                continue
            for feed in feeds:
                applied += self._feed(feed, decoded)
        return applied

    def _feed(
        self, feed: Feed, decoded: Decoded | None = None, *, retry: bool = True
    ) -> int:
        tracking = feed.tracking
        assert tracking is not None
        if decoded is None:
            page = self.store.read_events(tracking.position, self.page_size)
            if not page:
                return 0
            decoded = decode_page(page)
        events, not_understood = decoded
        failure: ViewError | None = None
        try:
            failure = self._fold_page(feed, events)
            if failure is not None and self._moved(feed):
                # The rows it folded on were not this runner's (a rebuild swapped new
                # tables in meanwhile): not the view's fault.
                raise ConcurrentUpdate(feed.view.name)
        except ConcurrentUpdate:
            feed.folder.forget()
            feed.tracking = self.store.tracking(feed.view.name)
            log.warning("view %s moved under this runner; resuming from position %d",
                        feed.view.name, feed.tracking.position)
            return self._feed(feed, retry=False) if retry else 0
        except BaseException:
            feed.folder.forget()
            raise
        if failure is None and not_understood is not None:
            failure = ViewError.not_understood(feed.view.name, not_understood)
        if failure is not None:
            self._fail(feed, failure)
        return feed.tracking.position - tracking.position if feed.tracking else 0

    def _fold_page(self, feed: Feed, events: list[Event]) -> ViewError | None:
        """Fold and commit ``events``; the failure that stops the view, if one does."""

        def commit(done: list[Event], state: PageState) -> None:
            self._commit(feed, done, state)

        try:
            return feed.folder.fold_until_failure(events, commit)
        except StoreUnavailable:
            raise
        except StoreError as error:  # the database refused the page's rows
            log.warning("view %s: the database refused a page (%s); applying its events "
                        "one at a time", feed.view.name, first_line(error))
            assert feed.tracking is not None
            after = feed.tracking.position
            return write_one_by_one(feed.folder, [e for e in events if e.position > after],
                                    commit)

    def _moved(self, feed: Feed) -> bool:
        mine, stored = feed.tracking, self.store.tracking(feed.view.name)
        assert mine is not None
        return (mine.position, mine.generation) != (stored.position, stored.generation)

    def _commit(self, feed: Feed, events: list[Event], state: PageState) -> None:
        expected = feed.tracking
        assert expected is not None
        position = events[-1].position
        with self.store.transaction():
            if not self.store.advance(expected, position, self.owner):
                raise ConcurrentUpdate(feed.view.name)
            self.store.apply(feed.view, LIVE, state)
        feed.tracking = replace(expected, position=position, error=None)
        feed.folder.trim()

    def _fail(self, feed: Feed, failure: ViewError) -> None:
        feed.failure = storable(str(failure))
        feed.folder.forget()
        log.error("%s", feed.failure)
        self.store.record_error(feed.view.name, feed.failure, self.owner)

    # -- loops --------------------------------------------------------------------------

    def lag(self) -> dict[str, int]:
        head = self.store.head()
        return {f.view.name: head - f.tracking.position for f in self.feeds if f.tracking}

    def catch_up(self) -> int:
        """Feed the held views until they reach the head of the log (or fail)."""
        total = 0
        while True:
            applied = self.step()
            total += applied
            if applied == 0:
                return total

    def run(
        self,
        stop: threading.Event,
        *,
        poll_interval: float = 0.5,
        on_progress: Callable[[Runner], None] | None = None,
        linger: float = 0.0,
    ) -> None:
        """Feed until ``stop`` is set: take free views' locks, apply pages, wait for more.

        Wakes on new events (LISTEN/NOTIFY on PostgreSQL) or every ``poll_interval``;
        after a page under a quarter of ``page_size``, waits ``linger`` seconds first
        (:data:`LINGER_SECONDS` for the service's runner).
        """
        last_try = 0.0
        try:
            while not stop.is_set():
                now = time.monotonic()
                if now - last_try >= poll_interval and len(self.held) + len(self.failures) < len(
                    self.feeds
                ):
                    self.acquire()
                    last_try = now
                applied = self.step()
                if on_progress is not None:
                    on_progress(self)
                if applied == 0 and not stop.is_set():
                    self.store.wait_for_events(poll_interval)
                elif linger and 0 < self.last_read < self.page_size // 4:
                    stop.wait(linger)
        finally:
            self.release()


def catch_up_unfed(store: ViewStore, views: list[View]) -> list[str]:
    """Bring the views no runner feeds up to the head of the log (for one-shot readers
    such as the CLI); views a runner feeds are left to it. Returns the views caught up."""
    runner = Runner(store, views)
    try:
        runner.acquire()
        runner.catch_up()
        held = runner.held
    finally:
        runner.release()
    if runner.failures:
        raise ViewsStopped(runner.failures)
    return held


class ViewsStopped(LedgerError):
    """A view stopped on an event."""

    code = "view_stopped"

    def __init__(self, failures: dict[str, str]) -> None:
        self.failures = failures
        super().__init__("; ".join(failures.values()))
