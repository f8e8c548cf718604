"""The views the ledger keeps, by name."""

from __future__ import annotations

from ledger.errors import LedgerError
from projections.actions import ActionsView
from projections.dead_letter_alerts import DeadLetterAlertsView
from projections.health_metrics import HealthMetricsView
from projections.health_minutes import HealthMinutesView
from projections.job_status import JobStatusView
from projections.model import View
from projections.queue_controls import QueueControlsView
from projections.queue_history import QueueHistoryView
from projections.rate_limits import RateLimitCountersView
from projections.schedules import SchedulesView

VIEWS: dict[str, View] = {
    view.name: view
    for view in (
        JobStatusView(), QueueHistoryView(), HealthMetricsView(), RateLimitCountersView(),
        DeadLetterAlertsView(), QueueControlsView(), SchedulesView(), HealthMinutesView(),
        ActionsView(),
    )
}


class UnknownView(LedgerError):
    """No view has this name."""

    code = "unknown_view"

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"no view named {name!r} (views: {', '.join(VIEWS)})")


def get_view(name: str) -> View:
    try:
        return VIEWS[name]
    except KeyError:
        raise UnknownView(name) from None


def select(names: list[str] | None) -> list[View]:
    """The named views (all of them when ``names`` is empty)."""
    return [get_view(n) for n in names] if names else list(VIEWS.values())
