"""Rate-limit counters: per subject (customer, or API key / client IP) and UTC minute.

- ``enqueued``: jobs the ledger accepted for the customer in that minute (from
  ``Job.Enqueued``);
- ``admitted`` / ``refused``: requests the HTTP limiter let through or turned away, from
  the limiter's :class:`ledger.tally.RequestTally` events (already aggregated per process
  and minute, so a flood of refusals is a trickle of events).

This is history, rebuildable from the log; the limiter's live counters that decide
requests are a different thing (docs/adr/0011-rate-limit-counters-split.md).
"""

from __future__ import annotations

from datetime import datetime

from ledger.tally import TALLY_WINDOW_SECONDS, window_start
from projections.events import Enqueued, Event, RequestsTallied
from projections.model import Column, Index, Kind, PageState, Table, View

WINDOW_SECONDS = TALLY_WINDOW_SECONDS

RATE_LIMIT_COUNTERS = Table(
    name="rate_limit_counters",
    kind=Kind.COUNTER,
    columns=(
        Column("subject", "text", nullable=False),
        Column("window_start", "timestamp", nullable=False),
        Column("enqueued", "int", nullable=False),
        Column("admitted", "int", nullable=False),
        Column("refused", "int", nullable=False),
    ),
    key=("subject", "window_start"),
    indexes=(Index("window_idx", ("window_start",)),),
)


def _window(at: datetime) -> datetime:
    return window_start(at, WINDOW_SECONDS)


class RateLimitCountersView(View):
    name = "rate_limits"
    tables = (RATE_LIMIT_COUNTERS,)

    def enqueued(self, event: Event, state: PageState) -> None:
        body = event.body
        assert isinstance(body, Enqueued)
        state.add(RATE_LIMIT_COUNTERS, (body.customer_id, _window(event.at)), enqueued=1)

    def tallied(self, event: Event, state: PageState) -> None:
        body = event.body
        assert isinstance(body, RequestsTallied)
        if body.admitted < 0 or body.refused < 0:
            raise ValueError(f"negative tally ({body.admitted} admitted, {body.refused} refused)")
        if body.window_seconds != WINDOW_SECONDS:
            raise ValueError(
                f"tally window of {body.window_seconds}s; this view counts {WINDOW_SECONDS}s"
            )
        state.add(
            RATE_LIMIT_COUNTERS, (body.subject, _window(body.window_start.at)),
            admitted=body.admitted, refused=body.refused,
        )

    handlers = {  # noqa: RUF012 - read-only dispatch table
        Enqueued: enqueued,
        RequestsTallied: tallied,
    }
