"""The ASGI application: routes, errors, the OpenAPI document, and what runs beside them.

:func:`create_app` takes the wired :class:`~adapters.http.services.Api`; its lifespan runs
the batch writer, the limiter's workers, the health monitor and the tally reporter (the
limiter's aggregated decisions, appended to the ledger for the rate-limit view) in one
task group, and on shutdown flushes what the tally holds.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.to_thread
from eventsourcing.persistence import RecordConflictError
from litestar import Litestar
from litestar.config.compression import CompressionConfig
from litestar.openapi import OpenAPIConfig

from adapters.http import health, heartbeats, jobs, metrics, queues
from adapters.http.access import access_middleware
from adapters.http.bodies import MAX_BODY_BYTES
from adapters.http.health import HealthMonitor
from adapters.http.openapi import ExactJsonRenderPlugin
from adapters.http.problems import EXCEPTION_HANDLERS
from adapters.http.services import Api
from ledger.tally import RequestTally

log = logging.getLogger(__name__)

TALLY_FLUSH_SECONDS = 15.0


def create_app(api: Api) -> Litestar:
    """The HTTP API over ``api``."""
    monitor = HealthMonitor(api)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        api.writer.start()
        try:
            async with api.limiter.running(), anyio.create_task_group() as tg:
                tg.start_soon(monitor.run)
                tg.start_soon(_report_tallies, api)
                try:
                    yield
                finally:
                    tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await _flush_tallies(api, everything=True)
                await anyio.to_thread.run_sync(api.writer.close)
                api.reads.close()
                api.health_reads.close()

    app = Litestar(
        route_handlers=[
            *jobs.ROUTES, *heartbeats.ROUTES, *queues.ROUTES, *health.ROUTES, *metrics.ROUTES
        ],
        middleware=[access_middleware],
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=OpenAPIConfig(
            title="job-ledger",
            version="1",
            description="Background jobs as an event-sourced ledger: enqueue, claim, "
            "heartbeat, complete, fail; views, dead letters, health and metrics.",
            path="/schema",
            render_plugins=[ExactJsonRenderPlugin()],
        ),
        request_max_body_size=MAX_BODY_BYTES,
        lifespan=[lifespan],
        compression_config=CompressionConfig(backend="gzip", minimum_size=4096),
        debug=False,
        logging_config=None,
    )
    app.state.api = api
    app.state.health = monitor
    return app


async def _report_tallies(api: Api) -> None:
    while True:
        await anyio.sleep(TALLY_FLUSH_SECONDS)
        await _flush_tallies(api)


async def _flush_tallies(api: Api, *, everything: bool = False) -> None:
    """Append the limiter's finished minutes (all of them when ``everything``) as tallies."""
    counter = api.limiter.tallies
    if counter is None:
        return
    tallies = counter.flush(api.clock(), everything=everything)
    if not tallies:
        return
    try:
        await anyio.to_thread.run_sync(_save_tallies, api, tallies)
    except Exception as error:
        log.warning("rate-limit tallies not saved (%s); keeping them for the next try", error)
        counter.restore(tallies)


def _save_tallies(api: Api, tallies: list[RequestTally]) -> None:
    try:
        api.ledger.save(*tallies)
    except RecordConflictError:
        # Some were saved by a try that failed after committing: save the others alone.
        for tally in tallies:
            with contextlib.suppress(RecordConflictError):
                api.ledger.save(tally)
