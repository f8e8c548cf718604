"""``dead_letter_alerts``: one row per dead letter, and whether its alert went out.

The alert outbox, derived from the log like every other view: a ``DeadLettered`` event
opens a pending row; the ``AlertSent`` or ``AlertFailed`` event the alert dispatcher
records for it closes the row. What is pending is therefore exactly the dead letters
whose alert the ledger has not recorded, and it can be rebuilt at any time.
"""

from __future__ import annotations

from collections.abc import Iterable

from projections.events import AlertFailed, AlertSent, DeadLettered, Event
from projections.model import Column, Index, Key, Kind, PageState, Table, View

DEAD_LETTER_ALERTS = Table(
    name="dead_letter_alerts",
    kind=Kind.STATE,
    columns=(
        Column("job_id", "uuid", nullable=False),
        Column("dead_letter_version", "int", nullable=False),
        Column("attempt", "int", nullable=False),
        Column("attempts_used", "int", nullable=False),
        Column("reason", "text", nullable=False),
        Column("last_error", "text"),
        Column("source", "text", nullable=False),
        Column("message_id", "text"),
        Column("dead_lettered_at", "timestamp", nullable=False),
        Column("alert_status", "text", nullable=False),
        Column("alerted_at", "timestamp"),
        Column("alert_detail", "text"),
    ),
    key=("job_id", "dead_letter_version"),
    indexes=(Index("pending_idx", ("dead_lettered_at",), where=("alert_status", "pending")),),
)


class DeadLetterAlertsView(View):
    name = "dead_letter_alerts"
    tables = (DEAD_LETTER_ALERTS,)

    def keys(self, events: Iterable[Event]) -> dict[str, set[Key]]:
        return {
            DEAD_LETTER_ALERTS.name: {
                (e.originator_id, e.body.dead_letter_version)
                for e in events
                if isinstance(e.body, AlertSent | AlertFailed)
            }
        }

    def dead_lettered(self, event: Event, state: PageState) -> None:
        body = event.body
        assert isinstance(body, DeadLettered)
        key = (event.originator_id, event.originator_version)
        state.create(
            DEAD_LETTER_ALERTS,
            key,
            {
                "job_id": event.originator_id,
                "dead_letter_version": event.originator_version,
                "attempt": body.attempt,
                "attempts_used": body.attempts_used,
                "reason": body.reason,
                "last_error": body.last_error,
                "source": body.source,
                "message_id": body.message_id,
                "dead_lettered_at": event.at,
                "alert_status": "pending",
                "alerted_at": None,
                "alert_detail": None,
            },
        )

    def alert_sent(self, event: Event, state: PageState) -> None:
        body = event.body
        assert isinstance(body, AlertSent)
        row = state.get(DEAD_LETTER_ALERTS, (event.originator_id, body.dead_letter_version))
        row["alert_status"] = "sent"
        row["alerted_at"] = event.at
        row["alert_detail"] = f"{body.channel}: {body.delivery_id}"

    def alert_failed(self, event: Event, state: PageState) -> None:
        body = event.body
        assert isinstance(body, AlertFailed)
        row = state.get(DEAD_LETTER_ALERTS, (event.originator_id, body.dead_letter_version))
        row["alert_status"] = "failed"
        row["alerted_at"] = event.at
        row["alert_detail"] = f"{body.channel}: {body.reason}"

    handlers = {  # noqa: RUF012 - read-only dispatch table
        DeadLettered: dead_lettered,
        AlertSent: alert_sent,
        AlertFailed: alert_failed,
    }
