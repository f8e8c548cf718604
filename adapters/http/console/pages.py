"""Every page of the console, one module each."""

from __future__ import annotations

from adapters.http.console import audit, dead_letters, job, jobs, overview, queues, views

ROUTES = [
    *overview.ROUTES, *jobs.ROUTES, *job.ROUTES, *dead_letters.ROUTES, *queues.ROUTES,
    *views.ROUTES, *audit.ROUTES,
]
