"""Every page of the console, one module each."""

from __future__ import annotations

from adapters.http.console import job, jobs, overview

ROUTES = [*overview.ROUTES, *jobs.ROUTES, *job.ROUTES]
