"""``POST /workers/cancels``: which of a worker's running attempts were asked to stop.

A worker connected over HTTP learns of an operator's cancel from its heartbeat's answer,
every ``heartbeat_interval`` (30 s by default). Between heartbeats its SDK asks here about
once a second (ADR 100): the request names the attempts it runs, the answer the ones the
``job_status`` view holds as ``in_progress`` with ``cancel_requested`` for that same
attempt. It is one read of the view by key (its primary key), at most ``MAX_BATCH`` ids a
request, appends nothing, and a worker key scoped to a customer sees only that customer's
jobs (another's are answered as if not cancelled). The view may lag the log by a moment:
a cancel not folded yet is found by the next call, or by the next heartbeat.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Request, post
from litestar.di import NamedDependency

from adapters.http.access import principal_of
from adapters.http.bodies import MAX_BATCH, BatchedHeartbeat, Body, read_body
from adapters.http.jobs import WORKER
from adapters.http.services import ReadPool
from ledger.access import Principal
from ledger.commands import Attempt, Name
from projections.job_status import JOB_STATUS
from projections.model import Row
from projections.store import LIVE, ViewStore


class CancelsRequest(Body, frozen=True):
    """The attempts one worker runs now (at most 1,000 a request)."""

    worker_id: Name
    jobs: Annotated[list[BatchedHeartbeat], msgspec.Meta(min_length=1, max_length=MAX_BATCH)]


class CancelRequested(msgspec.Struct, frozen=True):
    job_id: UUID
    attempt: Attempt


class CancelsResult(msgspec.Struct, frozen=True):
    cancel_requested: list[CancelRequested]
    """The named attempts an operator asked to stop: cancel their handlers and report
    ``POST /jobs/{id}/cancelled``. Empty when none was."""


@post(
    "/workers/cancels", status_code=200, opt={"access": WORKER, "body": CancelsRequest},
    summary="Which running attempts were asked to stop", tags=["workers"],
)
async def worker_cancels(
    request: Request[Any, Any, Any],
    views: NamedDependency[ReadPool],
) -> CancelsResult:
    """One read of ``job_status`` by key: the named attempts that are in progress with a
    cancel request (the same answer a heartbeat gives as ``cancel_requested``), without
    recording anything. Ask about once a second between heartbeats."""
    body = await read_body(request, CancelsRequest)
    wanted = {job.job_id: job.attempt for job in body.jobs}
    rows = await views.read(lambda store: _rows(store, list(wanted)))
    found = requested(rows, wanted, principal_of(request))
    return CancelsResult(cancel_requested=[
        CancelRequested(job_id=job_id, attempt=wanted[job_id]) for job_id in found
    ])


def _rows(store: ViewStore, job_ids: list[UUID]) -> list[Row]:
    return list(store.load(JOB_STATUS, LIVE, [(job_id,) for job_id in job_ids]).values())


def requested(rows: list[Row], wanted: dict[UUID, int], principal: Principal) -> list[UUID]:
    """The jobs of ``rows`` whose attempt in ``wanted`` runs with a cancel request and
    which ``principal`` may see, in the order ``wanted`` names them."""
    hits = set()
    for row in rows:
        job_id = row["job_id"] if isinstance(row["job_id"], UUID) else UUID(str(row["job_id"]))
        if (
            row["status"] == "in_progress" and row["cancel_requested"]
            and row["attempt"] == wanted.get(job_id)
            and principal.sees_customer(str(row["customer_id"]))
        ):
            hits.add(job_id)
    return [job_id for job_id in wanted if job_id in hits]


ROUTES = [worker_cancels]
