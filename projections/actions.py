"""``actions``: one row per bulk action (``ledger.action.Action``, ADR 100).

Its kind, ``state`` (``running``, ``interrupted`` or ``finished``), how far it got (``done``
of ``total``, of which ``acted``), who started it and why, when it started and finished,
folded from the action's events. The serving process finds the actions to resume at
start-up from the index on ``state`` (``actions_state_idx``) instead of reading the log's
``Started`` and ``Finished`` notifications, which no index supports
(:meth:`adapters.service.actions.ActionRunner.unfinished`).
"""

from __future__ import annotations

from collections.abc import Iterable

from projections.events import (
    ActionEnded,
    ActionInterrupted,
    ActionProgressed,
    ActionStarted,
    Event,
)
from projections.model import Column, Index, Key, Kind, PageState, Table, View

ACTIONS = Table(
    name="actions",
    kind=Kind.STATE,
    columns=(
        Column("action_id", "uuid", nullable=False),
        Column("kind", "text", nullable=False),
        Column("state", "text", nullable=False),
        Column("total", "int", nullable=False),
        Column("done", "int", nullable=False),
        Column("acted", "int", nullable=False),
        Column("actor", "text", nullable=False),
        Column("reason", "text"),
        Column("error", "text"),
        Column("started_at", "timestamp", nullable=False),
        Column("finished_at", "timestamp"),
        Column("updated_at", "timestamp", nullable=False),
    ),
    key=("action_id",),
    indexes=(Index("state_idx", ("state", "started_at", "action_id")),),
)

_UPDATES = (ActionProgressed, ActionEnded, ActionInterrupted)


class ActionsView(View):
    name = "actions"
    tables = (ACTIONS,)

    def keys(self, events: Iterable[Event]) -> dict[str, set[Key]]:
        return {
            ACTIONS.name: {(e.originator_id,) for e in events if isinstance(e.body, _UPDATES)}
        }

    def started(self, event: Event, state: PageState) -> None:
        body = event.body
        assert isinstance(body, ActionStarted)
        state.put(ACTIONS, (event.originator_id,), {
            "action_id": event.originator_id, "kind": body.kind, "state": "running",
            "total": body.total, "done": 0, "acted": 0, "actor": body.actor,
            "reason": body.reason, "error": None, "started_at": event.at,
            "finished_at": None, "updated_at": event.at,
        })

    def progressed(self, event: Event, state: PageState) -> None:
        body = event.body
        assert isinstance(body, ActionProgressed)
        row = state.get(ACTIONS, (event.originator_id,))
        row.update(state="running", done=body.done, acted=body.acted, updated_at=event.at)

    def finished(self, event: Event, state: PageState) -> None:
        row = state.get(ACTIONS, (event.originator_id,))
        row.update(state="finished", finished_at=event.at, updated_at=event.at)

    def interrupted(self, event: Event, state: PageState) -> None:
        body = event.body
        assert isinstance(body, ActionInterrupted)
        row = state.get(ACTIONS, (event.originator_id,))
        row.update(state="interrupted", error=body.error, updated_at=event.at)

    handlers = {  # noqa: RUF012 - read-only dispatch table
        ActionStarted: started,
        ActionProgressed: progressed,
        ActionEnded: finished,
        ActionInterrupted: interrupted,
    }
