"""The service's background parts, each runnable alone or together in ``ledger serve``.

A part is ``async def part(*, task_status)`` (see :data:`adapters.http.server.Part`). Each
part opens its own session on the database (a view store is one session) and closes it
when cancelled.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import anyio
from anyio.abc import TaskStatus

from adapters.service.archive_policy import archive_part
from adapters.service.backend import Backend
from adapters.service.bootstrap import Container, utc_now
from adapters.service.checkpointer import checkpoint_part
from adapters.service.dispatcher import Dispatcher
from adapters.service.monitors import DeadLetterMonitor, StaleMonitor
from adapters.service.scheduler import Scheduler
from adapters.service.schedules import ScheduleTicker
from adapters.service.view_alerts import ViewAlerts
from adapters.slack.webhook import AlertSink, LoggedAlerts, SlackWebhook
from ledger.ports.transport import Transport
from projections.model import View
from projections.registry import VIEWS
from projections.runner import LINGER_SECONDS, PAGE_SIZE, Runner
from projections.store import ViewStore

Part = Callable[..., Coroutine[Any, Any, Any]]
log = logging.getLogger(__name__)


def owner_name(role: str) -> str:
    return f"{role}@{socket.gethostname()}:{os.getpid()}"


@asynccontextmanager
async def _session(container: Container) -> AsyncIterator[ViewStore]:
    store = await anyio.to_thread.run_sync(container.backend.open_views)
    try:
        yield store
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(store.close)


def feed_views(
    backend: Backend,
    views: list[View],
    stop: threading.Event,
    *,
    poll_interval: float = 0.5,
    page_size: int = PAGE_SIZE,
    max_backoff: float = 5.0,
) -> dict[str, str]:
    """Run a projection runner until ``stop`` is set (blocking; in a thread of its own).

    A failed session (the database restarting) does not end it: it logs, backs off
    (``poll_interval`` doubling to ``max_backoff``), opens a new session and starts a new
    runner, which takes the free views' locks again and resumes each view from its
    committed position (a view's rows and its position commit together, so nothing is
    skipped or applied twice). Returns the views that stopped on an event they could not
    apply, as :attr:`Runner.failures` says.
    """
    failures = 0
    while not stop.is_set():
        try:
            store = backend.open_views()
        except Exception as error:  # still down: try again
            failures += 1
            delay = min(max_backoff, poll_interval * 2 ** min(failures - 1, 16))
            log.warning("projection runner: cannot open a session: %s; retrying in %.1fs",
                        error, delay)
            stop.wait(delay)
            continue
        try:
            runner = Runner(store, views, page_size=page_size)
            runner.run(stop, poll_interval=poll_interval, linger=LINGER_SECONDS)
            return runner.failures
        except Exception as error:  # the database may be restarting: a new session
            failures += 1
            delay = min(max_backoff, poll_interval * 2 ** min(failures - 1, 16))
            log.warning("projection runner: %s; reconnecting in %.1fs",
                        error or type(error).__name__, delay)
        finally:
            with contextlib.suppress(Exception):  # a dead session has nothing to release
                store.close()
        stop.wait(delay)
    return {}


def projection_part(container: Container, *, poll_interval: float = 0.5) -> Part:
    """The projection runner, in a thread of its own until cancelled (reconnecting after a
    failed session, see :func:`feed_views`)."""

    async def part(*, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        stop, done = threading.Event(), threading.Event()

        def feed() -> None:
            try:
                feed_views(container.backend, list(VIEWS.values()), stop,
                           poll_interval=poll_interval)
            finally:
                done.set()

        task_status.started()
        try:
            await anyio.to_thread.run_sync(feed, abandon_on_cancel=True)
        finally:
            stop.set()  # the runner finishes its page, releases its locks, returns
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(done.wait, poll_interval + 30)

    return part


def dispatcher_part(container: Container, transport: Transport) -> Part:
    """The dispatcher, with the scheduler's round beside it on a session of its own (it
    releases due scheduled jobs, whose ``Released`` the dispatcher sends; ADR 100)."""

    async def part(*, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        async with _session(container) as store, _session(container) as timed, \
                anyio.create_task_group() as group:
            scheduler = Scheduler(
                timed, container.ledger, clock=utc_now, reopen=container.backend.open_views
            )
            group.start_soon(_run_worker, scheduler, timed, anyio.TASK_STATUS_IGNORED)
            dispatcher = Dispatcher(
                store, container.ledger, transport, clock=utc_now, owner=owner_name("dispatch"),
                reopen=container.backend.open_views,
            )
            await _run_worker(dispatcher, store, task_status)
            group.cancel_scope.cancel()

    return part


def stale_part(container: Container) -> Part:
    async def part(*, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        async with _session(container) as store:
            monitor = StaleMonitor(
                store, container.ledger, container.settings, clock=utc_now,
                detected_by=owner_name("stale-monitor"),
                reopen=container.backend.open_views,
            )
            await _run_worker(monitor, store, task_status)

    return part


def schedules_part(container: Container) -> Part:
    """The schedule ticker: fires due cron ticks (not the scheduler of delayed jobs)."""

    async def part(*, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        async with _session(container) as store:
            ticker = ScheduleTicker(
                store, container.ledger, clock=utc_now, actor=owner_name("schedules"),
                reopen=container.backend.open_views,
                lead=container.settings.schedule_lead_seconds,
            )
            await _run_worker(ticker, store, task_status)

    return part


async def _run_worker(
    worker: Dispatcher | StaleMonitor | DeadLetterMonitor | Scheduler | ScheduleTicker,
    opened: ViewStore,
    task_status: TaskStatus[None],
) -> None:
    """Run the dispatcher or a monitor; if it reconnected, close the session it holds
    (``_session`` closes the one it opened)."""
    try:
        await worker(task_status=task_status)
    finally:
        if worker.store is not opened:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(worker.store.close)


def alert_sink(container: Container) -> tuple[AlertSink, str]:
    """Slack when ``SLACK_WEBHOOK_URL`` is set, else the log."""
    url = container.settings.slack_webhook_url
    if url:
        return SlackWebhook(url), "slack"
    return LoggedAlerts(), "log"


def dead_letter_part(
    container: Container, transport: Transport | None, sink: AlertSink, channel: str
) -> Part:
    """The dead-letter monitor with alert delivery, and beside it (on a session of its own)
    the alert of a view that stopped on an event, through the same sink."""

    async def part(*, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        async with _session(container) as store, _session(container) as alerts_store, \
                anyio.create_task_group() as group:
            alerts = ViewAlerts(alerts_store, sink, list(VIEWS), owner_name("view-alerts"),
                                reopen=container.backend.open_views)
            await group.start(alerts)
            monitor = DeadLetterMonitor(
                store, container.ledger, transport, sink, container.settings,
                clock=utc_now, channel=channel, reopen=container.backend.open_views,
            )
            await _run_worker(monitor, store, task_status)
            group.cancel_scope.cancel()

    return part


@asynccontextmanager
async def service_parts(container: Container) -> AsyncIterator[list[Part]]:
    """Every background part of ``ledger serve``, sharing one transport (closed after)."""
    from adapters.service.bootstrap import build_transport

    transport = await anyio.to_thread.run_sync(
        build_transport, container.settings, container.backend
    )
    sink, channel = alert_sink(container)
    try:
        yield [
            projection_part(container),
            dispatcher_part(container, transport),
            stale_part(container),
            schedules_part(container),
            dead_letter_part(container, transport, sink, channel),
            checkpoint_part(
                container.backend, container.settings.checkpoint_every_events,
                container.settings.checkpoint_keep, utc_now,
            ),
            *archive_parts(container),
        ]
    finally:
        with anyio.CancelScope(shield=True):
            await transport.aclose()


def archive_parts(container: Container) -> list[Part]:
    """The archive policy when ``ARCHIVE_OLDER_THAN`` is set (ADR 110), else nothing."""
    settings = container.settings
    if settings.archive_older_than is None:
        return []
    return [archive_part(container.backend, settings, utc_now)]
