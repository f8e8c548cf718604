"""Where each view is: position, lag behind the log's head, who feeds it, its error."""

from __future__ import annotations

from datetime import datetime

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


def view_status(
    store: ViewStore, views: list[View], *, runners: bool = False
) -> list[ViewStatus]:
    """Each view's position and lag (head of the log minus the view's position); with
    ``runners``, also whether a runner holds each view now (a lock probe per view)."""
    head = store.head()
    tracked = {t.view: t for t in store.all_tracking()}
    out = []
    for view in views:
        t = tracked.get(view.name)
        position = t.position if t else 0
        out.append(ViewStatus(
            view.name, position, head, max(head - position, 0), t.generation if t else 0,
            t.owner if t else None, t.error if t else None, t.updated_at if t else None,
            store.is_locked(lock_name(view.name)) if runners else None,
        ))
    return out
