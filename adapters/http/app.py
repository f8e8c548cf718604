"""The ASGI application: routes, errors, the OpenAPI document, and what runs beside them.

:func:`create_app` takes the wired :class:`HttpParts` and hands each route only the parts
its signature names, through Litestar's dependency injection (a route asking for
``writer: Writer`` gets the writer; nothing else reaches it). Its lifespan runs the batch
writer, the limiter's workers, the health monitor and the tally reporter in one task group,
resumes unfinished bulk actions in the background, and on shutdown stops them after their
batch and flushes what the tally holds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
from litestar import Litestar
from litestar.config.compression import CompressionConfig
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig

from adapters.http import (
    actions,
    health,
    heartbeats,
    job_batch,
    job_controls,
    jobs,
    metrics,
    queue_controls,
    queues,
    schedules,
    timetravel,
    worker_cancel,
    worker_cancels,
    worker_claims,
)
from adapters.http.access import Access, access_middleware
from adapters.http.bodies import MAX_BODY_BYTES, UNCOMPRESSED
from adapters.http.console import Console, console_router
from adapters.http.decoding import MAX_DEPTH
from adapters.http.health import HealthMonitor
from adapters.http.health_asof import HealthAsOf
from adapters.http.openapi import ExactJsonRenderPlugin
from adapters.http.paths import path_guard
from adapters.http.problems import EXCEPTION_HANDLERS
from adapters.http.ratelimit import Limiter
from adapters.http.services import JobReads, JobWrites, ReadPool, Writer
from adapters.http.tallies import TallyReporter
from adapters.service.action_runs import BackgroundActions
from adapters.service.queue_claims import QueueClaims

DESCRIPTION = (
    "Background jobs as an event-sourced ledger: enqueue, claim, heartbeat, complete, fail; "
    "views, dead letters, health and metrics. Keys go in `Authorization: Bearer <key>` "
    "(the `bearer` scheme). Request bodies are JSON of at most "
    f"{MAX_BODY_BYTES // 1024} KiB (413 beyond) nesting at most {MAX_DEPTH} levels of arrays "
    "and objects, the body itself included (400 `too_deep` beyond); an integer field takes "
    "`17.0` as `17`. A path that is not UTF-8 once percent-decoded, or a path parameter "
    "with a control character, is answered 400 `invalid_path`."
)

@dataclass
class HttpParts:
    """What the API is built from (:func:`adapters.http.wiring.build_http` wires them)."""

    writer: Writer
    jobs: JobReads
    views: ReadPool
    """Sessions on the views for the routes (``/health`` has its own, in the monitor)."""
    limiter: Limiter
    access: Access
    monitor: HealthMonitor
    tallies: TallyReporter
    health_as_of: HealthAsOf | None = None
    """``/health?as_of=``: the views folded to a past moment (ADR 90)."""
    console: Console | None = None
    """The web console at ``/ui`` (ADR 140); ``None``: no console (``--no-ui``)."""
    claims: QueueClaims | None = None
    """``POST /workers/claims`` and ``/workers/reports`` (ADR 155); ``None``: 404."""


def create_app(parts: HttpParts) -> Litestar:
    """The HTTP API over ``parts``."""
    background = BackgroundActions(actions.runner_of(parts.jobs))

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        parts.writer.batch.start()
        try:
            background.start()  # resumes unfinished bulk actions, on its own thread
            async with parts.limiter.running(), anyio.create_task_group() as tg:
                tg.start_soon(parts.monitor.run)
                tg.start_soon(parts.tallies.run)
                try:
                    yield
                finally:
                    tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(background.close)
                await parts.tallies.flush(everything=True)
                await anyio.to_thread.run_sync(parts.writer.batch.close)
                parts.views.close()
                parts.monitor.views.close()

    return Litestar(
        route_handlers=[
            *jobs.ROUTES, *heartbeats.ROUTES, *queues.ROUTES, *health.ROUTES, *metrics.ROUTES,
            *timetravel.ROUTES, *actions.ROUTES, *queue_controls.ROUTES,
            *schedules.ROUTES,
            *job_controls.ROUTES, *worker_cancel.ROUTES, *worker_cancels.ROUTES,
            *job_batch.ROUTES, *worker_claims.ROUTES,
            *(console_router(parts.console) if parts.console is not None else []),
        ],
        dependencies={
            "writer": _given(parts.writer),
            "jobs": _given(parts.jobs),
            "job_writes": _given(JobWrites(parts.writer, parts.jobs)),
            "views": _given(parts.views),
            "limiter": _given(parts.limiter),
            "monitor": _given(parts.monitor),
            "health_as_of": _given(parts.health_as_of),
            "actions": _given(background),
            "claims": _given(parts.claims),
        },
        middleware=[
            path_guard,
            DefineMiddleware(access_middleware, access=parts.access, limiter=parts.limiter),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=OpenAPIConfig(
            title="job-ledger",
            version="1",
            description=DESCRIPTION,
            path="/schema",
            render_plugins=[ExactJsonRenderPlugin()],
        ),
        request_max_body_size=MAX_BODY_BYTES,
        lifespan=[lifespan],
        compression_config=CompressionConfig(
            backend="gzip", minimum_size=4096, exclude_opt_key=UNCOMPRESSED
        ),
        debug=False,
        logging_config=None,
    )


def _given(part: Any) -> Provide:
    """A dependency that is always ``part`` (built once, no thread needed to get it)."""

    def get() -> Any:
        return part

    return Provide(get, use_cache=True, sync_to_thread=False)
