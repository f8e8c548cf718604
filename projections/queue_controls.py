"""``queue_controls``: one row per controlled queue (``ledger.queue.Queue``).

Whether the queue is paused (by whom, why, since when), its cap on running jobs and how
many of its attempts hold a slot now, folded from the queue aggregate's events. It feeds
the dispatcher's holds, ``/health``, ``/metrics`` and ``ledger queues list``
(docs/adr/0100-operator-controls.md). A queue never controlled has no row.
"""

from __future__ import annotations

from collections.abc import Iterable

from projections.events import (
    Event,
    QueueLimitSet,
    QueueOpened,
    QueuePaused,
    QueueResumed,
    SlotFreed,
    SlotsTaken,
    SlotTaken,
)
from projections.model import Column, Key, Kind, PageState, Table, View

QUEUE_CONTROLS = Table(
    name="queue_controls",
    kind=Kind.STATE,
    columns=(
        Column("queue_id", "uuid", nullable=False),
        Column("queue", "text", nullable=False),
        Column("paused", "int", nullable=False),
        Column("paused_by", "text"),
        Column("paused_reason", "text"),
        Column("paused_at", "timestamp"),
        Column("max_running", "int"),
        Column("running", "int", nullable=False),
    ),
    key=("queue_id",),
)

_UPDATES = (QueuePaused, QueueResumed, QueueLimitSet, SlotTaken, SlotsTaken, SlotFreed)


class QueueControlsView(View):
    name = "queue_controls"
    tables = (QUEUE_CONTROLS,)

    def keys(self, events: Iterable[Event]) -> dict[str, set[Key]]:
        return {
            QUEUE_CONTROLS.name: {
                (e.originator_id,) for e in events if isinstance(e.body, _UPDATES)
            }
        }

    def opened(self, event: Event, state: PageState) -> None:
        body = event.body
        assert isinstance(body, QueueOpened)
        state.create(QUEUE_CONTROLS, (event.originator_id,), {
            "queue_id": event.originator_id, "queue": body.name, "paused": 0,
            "paused_by": None, "paused_reason": None, "paused_at": None,
            "max_running": None, "running": 0,
        })

    def paused(self, event: Event, state: PageState) -> None:
        body = event.body
        assert isinstance(body, QueuePaused)
        row = state.get(QUEUE_CONTROLS, (event.originator_id,))
        row.update(paused=1, paused_by=body.actor, paused_reason=body.reason,
                   paused_at=event.at)

    def resumed(self, event: Event, state: PageState) -> None:
        row = state.get(QUEUE_CONTROLS, (event.originator_id,))
        row.update(paused=0, paused_by=None, paused_reason=None, paused_at=None)

    def limit_set(self, event: Event, state: PageState) -> None:
        body = event.body
        assert isinstance(body, QueueLimitSet)
        state.get(QUEUE_CONTROLS, (event.originator_id,))["max_running"] = body.max_running

    def slot_taken(self, event: Event, state: PageState) -> None:
        state.get(QUEUE_CONTROLS, (event.originator_id,))["running"] += 1

    def slots_taken(self, event: Event, state: PageState) -> None:
        body = event.body
        assert isinstance(body, SlotsTaken)
        state.get(QUEUE_CONTROLS, (event.originator_id,))["running"] += len(body.slots)

    def slot_freed(self, event: Event, state: PageState) -> None:
        state.get(QUEUE_CONTROLS, (event.originator_id,))["running"] -= 1

    handlers = {  # noqa: RUF012 - read-only dispatch table
        QueueOpened: opened,
        QueuePaused: paused,
        QueueResumed: resumed,
        QueueLimitSet: limit_set,
        SlotTaken: slot_taken,  # one per claim, in logs written before SlotsTaken
        SlotsTaken: slots_taken,
        SlotFreed: slot_freed,
    }
