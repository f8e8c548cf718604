"""Where each view is: position, lag behind the log's head, who feeds it, its error."""

from __future__ import annotations

from datetime import datetime

import msgspec

from projections.model import View
from projections.store import ViewStore


class ViewStatus(msgspec.Struct, frozen=True):
    view: str
    position: int
    head: int
    lag: int
    generation: int
    owner: str | None
    error: str | None
    updated_at: datetime | None


def view_status(store: ViewStore, views: list[View]) -> list[ViewStatus]:
    """Each view's position and lag (head of the log minus the view's position)."""
    head = store.head()
    tracked = {t.view: t for t in store.all_tracking()}
    out = []
    for view in views:
        t = tracked.get(view.name)
        position = t.position if t else 0
        out.append(ViewStatus(
            view.name, position, head, max(head - position, 0), t.generation if t else 0,
            t.owner if t else None, t.error if t else None, t.updated_at if t else None,
        ))
    return out
