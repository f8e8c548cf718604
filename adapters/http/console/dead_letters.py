"""Dead letters grouped by their error text, each group's alert status; redrive one (the
job's page), the selected or a whole group (through the jobs' confirmation page)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from litestar import Request, Response, get
from litestar.di import NamedDependency

from adapters.http.console.render import page, reader
from adapters.http.console.session import Console
from adapters.http.services import JobReads
from projections.queries.dead_letter_alerts import DeadLetterAlertQueries
from projections.queries.job_status import JobStatus, JobStatusQueries
from projections.store import ViewStore

SHOWN = 300
"""Dead letters grouped on the page, oldest first (the jobs page filters all of them)."""


@dataclass
class Group:
    error: str
    jobs: list[JobStatus] = field(default_factory=list)
    alerts: dict[str, int] = field(default_factory=dict)
    """The group's dead letters by alert status (pending, sent, failed)."""


def grouped(store: ViewStore) -> tuple[list[Group], int]:
    """The oldest dead letters grouped by error text (largest group first), and how many
    dead letters there are in all."""
    queries = JobStatusQueries(store)
    total = queries.count_dead_lettered()
    alerts = DeadLetterAlertQueries(store).of_oldest_dead_letters(SHOWN)
    groups: dict[str, Group] = {}
    for job in queries.dead_lettered(limit=SHOWN):
        group = groups.setdefault(job.last_error or "", Group(job.last_error or ""))
        group.jobs.append(job)
        status = alerts.get(str(job.job_id), "none")
        group.alerts[status] = group.alerts.get(status, 0) + 1
    return sorted(groups.values(), key=lambda g: (-len(g.jobs), g.error)), total


@get("/dead-letters", include_in_schema=False)
async def dead_letters_page(
    request: Request[Any, Any, Any], console: NamedDependency[Console],
    jobs: NamedDependency[JobReads],
) -> Response[str]:
    viewer = await reader(request, console)
    groups, total = await jobs.views.read(grouped)
    return page(request, viewer, "dead_letters.html", groups=groups, total=total, shown=SHOWN)


ROUTES = [dead_letters_page]
