"""Where each view is: position, lag behind the log's head, who feeds it, its error."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

import msgspec

from projections.model import View
from projections.runner import lock_name
from projections.store import ViewStore


class ViewStatus(msgspec.Struct, frozen=True):
    view: str
    position: int
    head: int
    lag: int
    generation: int
    owner: str | None
    """Who last fed the view (host:pid)."""
    error: str | None
    updated_at: datetime | None
    fed: bool | None = None
    """Whether a runner holds the view's lock right now (None: not asked)."""
    held_back: int = 0
    """Committed events past the head that no reader may read yet, because an older
    transaction is still running (PostgreSQL, ADR 150); counted in ``lag``."""


@runtime_checkable
class HoldsBack(Protocol):
    """A store whose readers stop at a settled head (PostgreSQL)."""

    def held_back(self) -> int:
        """Committed events past the head, held back by an older running transaction."""
        ...


def view_status(
    store: ViewStore, views: list[View], *, runners: bool = False
) -> list[ViewStatus]:
    """Each view's position and lag (head of the log minus the view's position, plus the
    committed events held back past the head); with ``runners``, also whether a runner
    holds each view now (a lock probe per view)."""
    head = store.head()
    held = store.held_back() if isinstance(store, HoldsBack) else 0
    tracked = {t.view: t for t in store.all_tracking()}
    out = []
    for view in views:
        t = tracked.get(view.name)
        position = t.position if t else 0
        out.append(ViewStatus(
            view.name, position, head, max(head - position, 0) + held,
            t.generation if t else 0, t.owner if t else None, t.error if t else None,
            t.updated_at if t else None,
            store.is_locked(lock_name(view.name)) if runners else None, held,
        ))
    return out
