"""A worker as a process: wired from the settings, drained by SIGTERM/SIGINT.

:func:`run_worker` is what ``ledger worker`` runs, and what a script runs to be a worker::

    import anyio
    from adapters.worker import JobContext, run_worker

    def resize(ctx: JobContext) -> dict[str, int]:
        return {"width": ctx.payload["width"] // 2}

    anyio.run(run_worker, resize)

The transport is the configured one (SQS when ``SQS_QUEUE_URL`` is set, else the local
queue in the ledger's database); the ledger is this process's (``DATABASE_URL`` or the
embedded SQLite) unless ``api_url`` names the HTTP API, which is then called with
``api_key``.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.to_thread
from anyio.abc import TaskStatus

from adapters.service.settings import Settings
from adapters.worker.config import WorkerConfig
from adapters.worker.context import Handler, load_handler
from adapters.worker.port import LedgerPort
from adapters.worker.runner import Worker
from adapters.worker.stats import WorkerStats
from ledger.ports.transport import Transport

log = logging.getLogger("ledger.worker")


@dataclass(frozen=True)
class Wiring:
    """What a worker process talks to, described for its start-up line."""

    transport: Transport
    ledger: LedgerPort
    transport_name: str
    ledger_name: str


async def run_worker(
    handler: Handler | str,
    *,
    config: WorkerConfig | None = None,
    settings: Settings | None = None,
    api_url: str | None = None,
    api_key: str | None = None,
    handle_signals: bool = True,
    health_file: Path | None = None,
    on_started: Callable[[Worker, Wiring], None] | None = None,
) -> WorkerStats:
    """Run a worker until SIGTERM/SIGINT (the first drains, a second interrupts).

    ``handler`` is a function or a ``module:function`` path. ``health_file``, if given,
    is touched every heartbeat interval while the worker's event loop is alive (for a
    container health check). Raises the ledger's named
    errors for bad settings or a handler that cannot be loaded, and
    :class:`~adapters.worker.port.WorkerAccessDenied` if the API refused the key.
    """
    if isinstance(handler, str):
        handler = load_handler(handler)
    if settings is None:
        from adapters.service.bootstrap import load_settings

        settings = load_settings()
    config = config or WorkerConfig.for_settings(settings)
    async with wired(settings, api_url=api_url, api_key=api_key) as wiring:
        worker = Worker(handler, wiring.transport, wiring.ledger, config)
        async with anyio.create_task_group() as tg:
            if handle_signals:
                tg.start_soon(drain_on_signals, worker)
            if health_file is not None:
                tg.start_soon(touch_periodically, health_file, config.heartbeat_interval)

            async def work(*, task_status: TaskStatus[None]) -> None:
                await worker.run(task_status=task_status)
                tg.cancel_scope.cancel()  # drained: stop listening for signals

            await tg.start(work)
            if on_started is not None:
                on_started(worker, wiring)
    if worker.fatal is not None:
        raise worker.fatal
    return worker.stats


@asynccontextmanager
async def wired(
    settings: Settings, *, api_url: str | None = None, api_key: str | None = None
) -> AsyncIterator[Wiring]:
    """The transport and the ledger port for ``settings``, closed on the way out."""
    from adapters.service.backend import backend_for
    from adapters.service.bootstrap import build, build_transport, describe_transport

    async with AsyncExitStack() as stack:
        backend = backend_for(settings)
        transport = await anyio.to_thread.run_sync(build_transport, settings, backend)
        stack.push_async_callback(transport.aclose)
        transport_name = describe_transport(settings, backend)
        port: LedgerPort
        if api_url is not None:
            from adapters.worker.http_client import HttpLedger

            port = HttpLedger(api_url, api_key)
            ledger_name = f"the API at {api_url}"
        else:
            from adapters.worker.inprocess import InProcessLedger

            container = await anyio.to_thread.run_sync(build, settings, backend)
            stack.callback(container.close)
            port = InProcessLedger(container.ledger)
            ledger_name = f"the ledger in-process ({container.backend.describe()})"
        stack.push_async_callback(port.aclose)
        yield Wiring(transport, port, transport_name, ledger_name)


async def touch_periodically(path: Path, interval: float) -> None:
    """Touch ``path`` now and every ``interval`` seconds (at most 10) until cancelled."""
    while True:
        try:
            await anyio.Path(path).touch()
        except OSError as error:
            log.warning("cannot touch the health file %s: %s", path, error)
        await anyio.sleep(min(interval, 10.0))


async def drain_on_signals(worker: Worker) -> None:
    """Drain ``worker`` on the first SIGTERM/SIGINT, interrupt its jobs on the second."""
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for received in signals:
            name = signal.Signals(received).name
            if worker.draining:
                log.warning("received %s again: interrupting running jobs", name)
                worker.interrupt()
            else:
                log.warning("received %s: draining (grace %gs)", name, worker.config.grace)
                worker.drain()
