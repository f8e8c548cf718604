"""Rebuild a view from the log beside the live one and swap it in; verify a live view.

Rebuild: fold the whole log into shadow tables in big pages (no position to track: an
interrupted rebuild starts over), catch up with the head, then in one transaction lock the
view's tracking row (the live runner waits at its next page), fold the last few events,
put the shadow tables in place of the live ones and set the position and a new
generation (the live runner's cached rows are void; it notices by the compare-and-set and
carries on from the new position). Readers keep reading the live tables until the swap.

Verify: in a snapshot of the live view (its rows and its position P, one moment), fold
the log up to P into scratch tables and compare them table by table: row count and a
content checksum, and the first differing rows if they differ. Then it folds on from P to
the head of the log, as a rebuild would: a view stopped at an event (or any event a
rebuild could not pass) fails verify, naming the view and the error, even when the rows
up to P are equal (ADR 65).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from itertools import zip_longest
from typing import Any

import msgspec

from ledger.errors import LedgerError, StoreError, StoreUnavailable
from projections.events import Event, RawRow, decode_page
from projections.memory import MemoryView
from projections.model import PageState, View, ViewError
from projections.pages import pages as log_pages
from projections.pages import prefetched
from projections.runner import Folder, refusal, storable, write_one_by_one
from projections.store import LIVE, SCRATCH, SHADOW, ViewStore

REBUILD_PAGE = 20_000
REBUILD_CACHE_ROWS = 1_000_000
CATCH_UP_ROUNDS = 5

Progress = Callable[[int, int], None]
"""Called with (position reached, head of the log) after each page."""
Start = Callable[[View, int], MemoryView | None]
"""The view to fold on from instead of nothing, given the position it must not pass: the
newest checkpoint at or after the archive's horizon (ADR 110), or ``None``."""


class MaintenanceBusy(LedgerError):
    """Another rebuild or verify of this view is running."""

    code = "maintenance_busy"

    def __init__(self, view: str) -> None:
        super().__init__(f"another rebuild or verify of view {view!r} is running")


def maintenance_lock(view: str) -> str:
    return f"maintenance:{view}"


@contextmanager
def _maintenance(store: ViewStore, view: View) -> Iterator[None]:
    if not store.try_lock(maintenance_lock(view.name)):
        raise MaintenanceBusy(view.name)
    try:
        yield
    finally:
        store.unlock(maintenance_lock(view.name))


def fold_into(
    store: ViewStore,
    folder: Folder,
    after: int,
    *,
    upto: int | None = None,
    page_size: int = REBUILD_PAGE,
    progress: Progress | None = None,
    in_transaction: bool = False,
    reader: ViewStore | None = None,
    log: Iterable[list[RawRow]] | None = None,
) -> int:
    """Fold the log from ``after`` (to ``upto`` or the head) into ``folder``'s tables;
    return the position reached. Raises :class:`ViewError` on an event it cannot fold.

    With ``reader`` (a second session on the same database) the next pages are read on a
    thread while this one is folded and written.
    """
    position = after
    head = upto if upto is not None else store.head()
    pages = (
        (page for page in log) if log is not None  # segments and the hot log (ADR 110)
        else prefetched(reader, after, page_size, upto, name="rebuild-reader")
        if reader is not None else log_pages(store, after, page_size, upto)
    )
    with closing(pages):  # stops the reading thread whatever happens here
        for page in pages:
            events, not_understood = decode_page(page)
            if not_understood is not None:
                raise ViewError.not_understood(folder.view.name, not_understood)
            _fold_page(store, folder, events, in_transaction)
            position = page[-1][0]
            if progress is not None:
                progress(position, max(head, position))
    return position


def _fold_page(store: ViewStore, folder: Folder, events: list[Event], inside: bool) -> None:
    """Fold and write one page; :class:`ViewError` naming the event it cannot fold or whose
    rows the database refuses (found by writing the page again event by event)."""
    try:
        _write(store, folder.view, folder.suffix, folder.fold(events), inside)
    except StoreUnavailable:
        raise
    except StoreError as error:
        folder.forget()
        if inside or not events:  # a failed statement ends the enclosing transaction
            raise refusal(folder.view.name, events[0], error) from error
        failure = write_one_by_one(
            folder, events,
            lambda done, state: _write(store, folder.view, folder.suffix, state, False),
        )
        if failure is not None:
            raise failure from error
    folder.trim()


def _seed(store: ViewStore, view: View, suffix: str, start: Start | None, upto: int) -> int:
    """Fill the ``suffix`` tables from ``start``'s view (if any); the position it is at."""
    memory = None if start is None else start(view, upto)
    if memory is None:
        return 0
    state = PageState(
        memory.rows, dirty={name: set(rows) for name, rows in memory.rows.items()},
        deltas={name: dict(rows) for name, rows in memory.counters.items()},
        appended={name: list(rows) for name, rows in memory.appended.items()},
    )
    with store.transaction():
        store.apply(view, suffix, state)
    return memory.position


def _write(store: ViewStore, view: View, suffix: str, state: PageState, inside: bool) -> None:
    if inside:
        store.apply(view, suffix, state)
        return
    with store.transaction():
        store.apply(view, suffix, state)


@dataclass(frozen=True)
class RebuildResult:
    view: str
    position: int
    generation: int
    events: int


def rebuild(
    store: ViewStore,
    view: View,
    *,
    page_size: int = REBUILD_PAGE,
    progress: Progress | None = None,
    reader: ViewStore | None = None,
    start: Start | None = None,
    log: Iterable[list[RawRow]] | None = None,
) -> RebuildResult:
    """Rebuild ``view`` from the log into shadow tables and swap them in atomically.

    ``reader``, a second session, reads pages ahead while ``store`` folds and writes.
    ``start`` gives a checkpoint to fold on from; ``log`` replaces the log's first pass
    (the archive's segments merged with the hot log).
    """
    with _maintenance(store, view):
        store.create_tables(view, SHADOW)
        try:
            folder = Folder(store, view, SHADOW, cache_rows=REBUILD_CACHE_ROWS)
            head = store.head()
            after = _seed(store, view, SHADOW, start, head)
            position = fold_into(store, folder, after, upto=head, page_size=page_size,
                                 progress=progress, reader=reader, log=log)
            # Catch up outside the swap while the log keeps growing (a few rounds: each
            # is bounded by the head when it starts), then the rest inside the swap.
            for _ in range(CATCH_UP_ROUNDS):
                head = store.head()
                if head - position <= page_size // 10:
                    break
                position = fold_into(store, folder, position, upto=head,
                                     page_size=page_size, progress=progress, reader=reader)
            with store.transaction():
                tracking = store.lock_tracking(view.name)
                position = fold_into(store, folder, position, upto=store.head(),
                                     page_size=page_size, in_transaction=True)
                store.replace_tables(view, SHADOW)
                generation = tracking.generation + 1
                store.set_tracking(view.name, position, generation)
            if progress is not None:
                progress(position, position)
        except BaseException:
            store.drop_tables(view, SHADOW)
            raise
    return RebuildResult(view.name, position, generation, position)


@dataclass
class TableComparison:
    table: str
    live_rows: int = 0
    rebuilt_rows: int = 0
    live_checksum: str = ""
    rebuilt_checksum: str = ""
    differences: list[tuple[tuple[Any, ...] | None, tuple[Any, ...] | None]] = field(
        default_factory=list
    )

    @property
    def equal(self) -> bool:
        return (self.live_rows, self.live_checksum) == (self.rebuilt_rows, self.rebuilt_checksum)


@dataclass
class VerifyResult:
    view: str
    position: int
    tables: list[TableComparison]
    failure: str | None = None
    """Why a rebuild cannot fold the log past ``position`` (the view stops there)."""

    @property
    def equal(self) -> bool:
        """The live rows equal a fresh fold of the log up to ``position``."""
        return all(t.equal for t in self.tables)

    @property
    def ok(self) -> bool:
        """Equal, and a rebuild folds the whole log."""
        return self.equal and self.failure is None


def verify(
    live: ViewStore,
    work: ViewStore,
    view: View,
    *,
    page_size: int = REBUILD_PAGE,
    progress: Progress | None = None,
    show: int = 3,
    reader: ViewStore | None = None,
    start: Start | None = None,
) -> VerifyResult:
    """Compare the live view with a fresh fold of the log up to the live view's position.

    ``live`` holds the snapshot of the live tables; ``work`` builds the scratch tables
    (two sessions of the same database).
    """
    with _maintenance(work, view):
        work.create_tables(view, SCRATCH)
        try:
            with live.snapshot():
                position = live.tracking(view.name).position
                folder = Folder(work, view, SCRATCH, cache_rows=REBUILD_CACHE_ROWS)
                after = _seed(work, view, SCRATCH, start, position)
                fold_into(work, folder, after, upto=position, page_size=page_size,
                          progress=progress, reader=reader)
                tables = [
                    compare(table.name, live.rows(table, LIVE), work.rows(table, SCRATCH), show)
                    for table in view.tables
                ]
            failure = _fold_rest(work, folder, position, page_size, reader)
        finally:
            work.drop_tables(view, SCRATCH)
    return VerifyResult(view.name, position, tables, failure)


def _fold_rest(
    store: ViewStore, folder: Folder, after: int, page_size: int, reader: ViewStore | None
) -> str | None:
    """Fold the log from ``after`` to its head as a rebuild would; the error that stops it."""
    try:
        fold_into(store, folder, after, upto=store.head(), page_size=page_size, reader=reader)
    except ViewError as error:
        return storable(str(error))
    return None


_encode = msgspec.json.Encoder().encode


def compare(
    name: str,
    live: Iterator[tuple[Any, ...]],
    rebuilt: Iterator[tuple[Any, ...]],
    show: int = 3,
) -> TableComparison:
    """Count and checksum two key-ordered row streams; keep the first pairs that differ."""
    result = TableComparison(name)
    live_hash, rebuilt_hash = hashlib.sha256(), hashlib.sha256()
    for left, right in zip_longest(live, rebuilt):
        if left is not None:
            result.live_rows += 1
            live_hash.update(_encode(left))
        if right is not None:
            result.rebuilt_rows += 1
            rebuilt_hash.update(_encode(right))
        if left != right and len(result.differences) < show:
            result.differences.append((left, right))
    result.live_checksum = live_hash.hexdigest()[:16]
    result.rebuilt_checksum = rebuilt_hash.hexdigest()[:16]
    return result
