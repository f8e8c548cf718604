"""job-ledger's client library for applications (ADR 120).

>>> from job_ledger import Client
>>> with Client("http://127.0.0.1:8000", api_key=KEY, customer_id="acme") as ledger:
...     job = ledger.enqueue({"invoice": 42}, queue="emails", idempotency_key="invoice-42")
...     print(ledger.wait(job.job_id, timeout=30).status)

:class:`Client` and :class:`AsyncClient` talk to ``ledger serve`` over HTTP with an API
key; :meth:`Client.local` (a :class:`LocalClient`) is the same interface on a ledger in
this process, and on PostgreSQL its :meth:`LocalClient.enqueue_in` enqueues within the
application's own transaction. Results are msgspec structs (:mod:`job_ledger.types`);
errors are the ledger's own classes (:mod:`ledger.errors`), over HTTP with the status,
the problem's code and ``retry_after`` (:mod:`job_ledger.errors`).
"""

from job_ledger.calls import Backoff
from job_ledger.errors import (
    AccessDenied,
    ApiProblem,
    ClientError,
    RateLimited,
    TransactionalEnqueueUnsupported,
    Unavailable,
    WaitTimedOut,
)
from job_ledger.http import AsyncClient, Client
from job_ledger.local import AsyncLocalClient, LocalClient
from job_ledger.types import ControlOutcome, Enqueued, HistoryEvent, JobRequest, JobState

__all__ = [
    "AccessDenied",
    "ApiProblem",
    "AsyncClient",
    "AsyncLocalClient",
    "Backoff",
    "Client",
    "ClientError",
    "ControlOutcome",
    "Enqueued",
    "HistoryEvent",
    "JobRequest",
    "JobState",
    "LocalClient",
    "RateLimited",
    "TransactionalEnqueueUnsupported",
    "Unavailable",
    "WaitTimedOut",
]
