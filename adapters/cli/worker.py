"""``ledger worker --handler module:function``: one worker process.

It receives jobs from the configured transport (SQS when ``SQS_QUEUE_URL`` is set, else
the local queue in the ledger's database), runs the handler on each with heartbeats, and
reports to the ledger in this process, or to the HTTP API with ``--api URL --api-key K``
(``LEDGER_API_URL`` / ``LEDGER_API_KEY``). SIGTERM or SIGINT drains it: no new jobs, the
running ones get ``--grace`` seconds, then they are interrupted and reported failed; a
second signal interrupts at once. Errors are one line on stderr and exit status 1.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import anyio
import typer

from adapters.cli.errors import InvalidOptions, reported
from adapters.cli.options import names
from adapters.tracing import configure_logging

if TYPE_CHECKING:
    from adapters.worker import WorkerStats

API_URL_VARIABLE = "LEDGER_API_URL"
API_KEY_VARIABLE = "LEDGER_API_KEY"
PROGRAM = "ledger worker"
INTERRUPTED = 130


def _say(message: str) -> None:
    sys.stderr.write(f"ledger worker: {' '.join(message.split())}\n")
    sys.stderr.flush()


def worker_command(
    *,
    handler: Annotated[
        str, typer.Option(help="The job handler, as module:function (e.g. "
                          "adapters.worker.examples:sleepy); modules are found from the working "
                          "directory too.")
    ],
    queue: Annotated[
        list[str] | None,
        typer.Option(
            help="Only jobs of this queue (repeatable); default: every job.", callback=names
        ),
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=1000, help="Jobs run at once.")] = 1,
    api: Annotated[
        str | None,
        typer.Option(envvar=API_URL_VARIABLE, help="Report to the HTTP API at this URL "
                     "instead of the ledger in this process."),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(envvar=API_KEY_VARIABLE, help="The API key (role worker) for --api."),
    ] = None,
    grace: Annotated[
        float, typer.Option(min=0, help="Seconds running jobs get to finish on SIGTERM.")
    ] = 25.0,
    heartbeat_interval: Annotated[
        float | None,
        typer.Option(min=0.01, help="Seconds between heartbeats; default min(30, stale "
                     "threshold / 4)."),
    ] = None,
    worker_id: Annotated[
        str | None,
        typer.Option(
            help="This worker's name in the ledger; default host:pid:random.", callback=names
        ),
    ] = None,
    health_file: Annotated[
        Path | None,
        typer.Option(help="Touch this file every heartbeat interval (for container health "
                     "checks: stale means the worker is stuck)."),
    ] = None,
    log_level: Annotated[
        str, typer.Option(help="Log level: debug, info, warning, error.")
    ] = "info",
    batch_claims: Annotated[
        bool, typer.Option(help="On the local queue, claim several jobs and report several "
                           "in one call when the ledger can (ADR 155).")
    ] = True,
) -> None:
    """Run a worker: receive jobs, run the handler with heartbeats, report the outcome."""
    with reported(PROGRAM):  # LOG_FORMAT=json: one JSON object per line (ADR 125)
        configure_logging(log_level.upper())
    if log_level.lower() != "debug":
        logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request otherwise
    try:
        with reported(PROGRAM):
            if api_key and not api:
                raise InvalidOptions(
                    "--api-key needs --api URL (without it the ledger runs in this process)"
                )
            stats = _run(
                handler, queues=queue, concurrency=concurrency, api=api, api_key=api_key,
                grace=grace, heartbeat_interval=heartbeat_interval, worker_id=worker_id,
                health_file=health_file, batch_claims=batch_claims,
            )
    except KeyboardInterrupt:
        _say("interrupted before it started")
        raise typer.Exit(INTERRUPTED) from None
    _say(
        f"stopped: {stats.completed} completed, {stats.failed} failed "
        f"({stats.interrupted} interrupted), {stats.superseded} superseded, "
        f"{stats.duplicates} duplicate messages"
    )
    if stats.abandoned_threads:
        # Their attempts are reported already; the interpreter would wait for them.
        _say(f"leaving {stats.abandoned_threads} handler thread(s) that ignored their "
             "cancellation")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def _run(
    handler_path: str,
    *,
    queues: list[str] | None,
    concurrency: int,
    api: str | None,
    api_key: str | None,
    grace: float,
    heartbeat_interval: float | None,
    worker_id: str | None,
    health_file: Path | None,
    batch_claims: bool = True,
) -> WorkerStats:
    from adapters.service.bootstrap import load_settings
    from adapters.worker import Wiring, Worker, WorkerConfig, load_handler, run_worker

    handler = load_handler(handler_path)
    settings = load_settings()
    try:
        config = WorkerConfig.for_settings(
            settings, concurrency=concurrency, grace=grace,
            heartbeat_interval=heartbeat_interval, queues=frozenset(queues) if queues else None,
            worker_id=worker_id, batch_claims=batch_claims,
        )
    except ValueError as error:
        raise InvalidOptions(str(error)) from None

    def started(worker: Worker, wiring: Wiring) -> None:
        only = f", queues {', '.join(sorted(config.queues))}" if config.queues else ""
        _say(
            f"{worker.worker_id} running {handler_path} (concurrency {config.concurrency}"
            f"{only}, heartbeat every {config.heartbeat_interval:g}s, grace {config.grace:g}s)"
            f" on {wiring.transport_name}; reporting to {wiring.ledger_name}"
        )

    async def main() -> WorkerStats:
        return await run_worker(
            handler, config=config, settings=settings, api_url=api, api_key=api_key,
            health_file=health_file, on_started=started,
        )

    return anyio.run(main)
