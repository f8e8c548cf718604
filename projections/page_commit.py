"""One transaction for a page and every view at its position (issue 19).

Once caught up, the runner's views all stand at the same position: it reads and decodes
the page once (``Runner.step``), and then wrote it view by view, a transaction each (nine
views: nine BEGIN, position compare-and-set, rows, COMMIT per page). Here every view's
rows and its position go in ONE transaction: each position is still compared-and-set
with its rows, so a crash leaves every view as it was or every view at the page's end.

This is the common path only. When a view fails on an event of the page, when the
database refuses a view's rows, or when a view's position moved under the runner, the
transaction is rolled back, every folder forgets its uncommitted rows, and the runner
writes the page view by view as before (:meth:`Runner._feed`): the view at fault stops at
its event, the others go on, exactly as without this path. A store with ``advance_many``
(PostgreSQL) moves every view's position in one statement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from ledger.errors import StoreError, StoreUnavailable
from projections.events import Event
from projections.model import PageState, View, ViewError
from projections.store import LIVE, ViewStore

if TYPE_CHECKING:
    from projections.runner import Feed


class _Moved(Exception):
    """A view's position moved under the runner: its own path sorts it out."""


def feed_together(store: ViewStore, feeds: Sequence[Feed], events: list[Event],
                  owner: str) -> bool:  # fmt: skip
    """Fold ``events`` into every feed's view and commit them all in one transaction;
    False (nothing written, folders reset) when a feed needs the view-by-view path."""
    if not events:
        return False
    states: list[PageState] = []
    try:
        for feed in feeds:
            states.append(feed.folder.fold(events))
        _commit(store, feeds, states, events[-1].position, owner)
    except (ViewError, _Moved, StoreError) as error:
        _forget(feeds)
        if isinstance(error, StoreUnavailable):
            raise
        return False
    except BaseException:
        _forget(feeds)
        raise
    for feed in feeds:
        assert feed.tracking is not None
        feed.tracking = replace(feed.tracking, position=events[-1].position, error=None)
        feed.folder.trim()
    return True


def _commit(store: ViewStore, feeds: Sequence[Feed], states: list[PageState], position: int,
            owner: str) -> None:  # fmt: skip
    expected = [feed.tracking for feed in feeds if feed.tracking is not None]
    assert len(expected) == len(feeds)
    together = getattr(store, "commit_page", None)  # PostgreSQL: pipelined (ADR 200)
    if together is not None:
        done = together(expected, position, owner, list(zip(_views(feeds), states, strict=True)))
        if done is False:
            raise _Moved(", ".join(e.view for e in expected))
        if done:
            return
    many = getattr(store, "advance_many", None)  # PostgreSQL: one statement for all
    with store.transaction():
        if many is not None and not many(expected, position, owner):
            raise _Moved(", ".join(e.view for e in expected))
        for feed, state, tracking in zip(feeds, states, expected, strict=True):
            if many is None and not store.advance(tracking, position, owner):
                raise _Moved(feed.view.name)
            store.apply(feed.view, LIVE, state)


def _views(feeds: Sequence[Feed]) -> list[View]:
    return [feed.view for feed in feeds]


def _forget(feeds: Sequence[Feed]) -> None:
    for feed in feeds:
        feed.folder.forget()
