"""Dead letters grouped by their error text, each group's alert status; redrive one (the
job's page), the selected or a whole group (through the jobs' confirmation page).

One query reads the oldest 300 dead letters with their alerts' status, another counts
them all up to 10,000 (from the partial index); each group lists its first 20 jobs (the
group's redrive link names all of them), so the page stays small with many dead letters."""

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
LISTED = 20
"""Jobs listed in a group's table (the rest are counted, and in the redrive link)."""
COUNT_CAP = 10_000
"""The total is counted up to this many ("more than 10,000" beyond)."""


@dataclass
class Group:
    error: str
    jobs: list[JobStatus] = field(default_factory=list)
    alerts: dict[str, int] = field(default_factory=dict)
    """The group's dead letters by alert status (pending, sent, failed)."""


def grouped(store: ViewStore) -> tuple[list[Group], int]:
    """The oldest dead letters grouped by error text (largest group first), and how many
    dead letters there are in all (up to ``COUNT_CAP`` + 1)."""
    total = JobStatusQueries(store).count_dead_lettered(COUNT_CAP + 1)
    groups: dict[str, Group] = {}
    for job, status in DeadLetterAlertQueries(store).of_oldest_dead_letters(SHOWN):
        group = groups.setdefault(job.last_error or "", Group(job.last_error or ""))
        group.jobs.append(job)
        group.alerts[status] = group.alerts.get(status, 0) + 1
    return sorted(groups.values(), key=lambda g: (-len(g.jobs), g.error)), total


@get("/dead-letters", include_in_schema=False)
async def dead_letters_page(
    request: Request[Any, Any, Any], console: NamedDependency[Console],
    jobs: NamedDependency[JobReads],
) -> Response[str]:
    viewer = await reader(request, console)
    groups, total = await jobs.views.read(grouped)
    return page(request, viewer, "dead_letters.html", groups=groups,
                total=min(total, COUNT_CAP), more_than=total > COUNT_CAP, shown=SHOWN,
                listed=LISTED)


ROUTES = [dead_letters_page]
