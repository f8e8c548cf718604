"""The service's background parts, each runnable alone or together in ``ledger serve``.

A part is ``async def part(*, task_status)`` (see :data:`adapters.http.server.Part`). Each
part opens its own session on the database (a view store is one session) and closes it
when cancelled.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import anyio
from anyio.abc import TaskStatus

from adapters.bootstrap import Container, open_views, utc_now
from adapters.dispatcher import Dispatcher
from adapters.monitors import DeadLetterMonitor, StaleMonitor
from adapters.slack import AlertSink, LoggedAlerts, SlackWebhook
from ledger.transport import Transport
from projections.registry import VIEWS
from projections.runner import Runner
from projections.store import ViewStore

Part = Callable[..., Coroutine[Any, Any, Any]]


def owner_name(role: str) -> str:
    return f"{role}@{socket.gethostname()}:{os.getpid()}"


@asynccontextmanager
async def _session(container: Container) -> AsyncIterator[ViewStore]:
    store = await anyio.to_thread.run_sync(open_views, container.settings)
    try:
        yield store
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(store.close)


def projection_part(container: Container, *, poll_interval: float = 0.5) -> Part:
    """The projection runner, in a thread of its own until cancelled."""

    async def part(*, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        async with _session(container) as store:
            runner = Runner(store, list(VIEWS.values()))
            stop, done = threading.Event(), threading.Event()

            def feed() -> None:
                try:
                    runner.run(stop, poll_interval=poll_interval)
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
    async def part(*, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        async with _session(container) as store:
            dispatcher = Dispatcher(
                store, container.ledger, transport, clock=utc_now, owner=owner_name("dispatch"),
                reopen=partial(open_views, container.settings),
            )
            await _run_worker(dispatcher, store, task_status)

    return part


def stale_part(container: Container) -> Part:
    async def part(*, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        async with _session(container) as store:
            monitor = StaleMonitor(
                store, container.ledger, container.settings, clock=utc_now,
                detected_by=owner_name("stale-monitor"),
                reopen=partial(open_views, container.settings),
            )
            await _run_worker(monitor, store, task_status)

    return part


async def _run_worker(
    worker: Dispatcher | StaleMonitor | DeadLetterMonitor, opened: ViewStore,
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
    async def part(*, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        async with _session(container) as store:
            monitor = DeadLetterMonitor(
                store, container.ledger, transport, sink, container.settings,
                clock=utc_now, channel=channel, reopen=partial(open_views, container.settings),
            )
            await _run_worker(monitor, store, task_status)

    return part


@asynccontextmanager
async def service_parts(container: Container) -> AsyncIterator[list[Part]]:
    """Every background part of ``ledger serve``, sharing one transport (closed after)."""
    from adapters.bootstrap import build_transport

    transport = await anyio.to_thread.run_sync(build_transport, container.settings)
    sink, channel = alert_sink(container)
    try:
        yield [
            projection_part(container),
            dispatcher_part(container, transport),
            stale_part(container),
            dead_letter_part(container, transport, sink, channel),
        ]
    finally:
        with anyio.CancelScope(shield=True):
            await transport.aclose()
