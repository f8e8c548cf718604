"""The worker SDK: run a function on every job the transport delivers.

    from adapters.worker import JobContext, run_worker

    async def send_invoice(ctx: JobContext) -> dict[str, str]:
        ...  # ctx.job_id, ctx.attempt, ctx.payload, ctx.customer_id, ctx.queue
        return {"invoice": "sent"}

    anyio.run(run_worker, send_invoice)         # or: ledger worker --handler mod:send_invoice

- :class:`Worker`: receives, claims, runs the handler with heartbeats, reports, settles
  the message (:mod:`adapters.worker.runner` says exactly how);
- :class:`JobContext`: what a handler gets, including ``cancelled`` / ``superseded``;
- :class:`WorkerConfig`: concurrency, queues, heartbeat interval, grace period;
- :func:`run_worker`: a worker wired from the environment, drained by SIGTERM/SIGINT;
- the ledger port and its two adapters, :class:`InProcessLedger` and :class:`HttpLedger`.

docs/adr/0040-worker-sdk.md records the decisions.
"""

from adapters.worker.config import WorkerConfig, default_heartbeat_interval
from adapters.worker.context import Cancelled, Handler, HandlerNotFound, JobContext, load_handler
from adapters.worker.http_client import HttpLedger
from adapters.worker.inprocess import InProcessLedger
from adapters.worker.port import (
    Beat,
    ClaimedJob,
    LedgerPort,
    LedgerUnavailable,
    WorkerAccessDenied,
)
from adapters.worker.process import Wiring, run_worker, wired
from adapters.worker.report import SHUTTING_DOWN
from adapters.worker.runner import Worker
from adapters.worker.stats import WorkerStats

__all__ = [
    "SHUTTING_DOWN",
    "Beat",
    "Cancelled",
    "ClaimedJob",
    "Handler",
    "HandlerNotFound",
    "HttpLedger",
    "InProcessLedger",
    "JobContext",
    "LedgerPort",
    "LedgerUnavailable",
    "Wiring",
    "Worker",
    "WorkerAccessDenied",
    "WorkerConfig",
    "WorkerStats",
    "default_heartbeat_interval",
    "load_handler",
    "run_worker",
    "wired",
]
