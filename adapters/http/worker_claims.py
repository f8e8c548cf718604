"""``POST /workers/claims`` and ``POST /workers/reports``: a worker on the local queue
claims up to N jobs in one request, and reports several ends in one (ADR 155).

A claim receives up to ``max`` visible messages of the local queue (priority order,
``queues`` if named), appends their ``Claimed`` events and settles the refused ones in
one transaction on the ledger's database; a worker key scoped to a customer claims only
that customer's jobs. Each claimed job comes with its message's receipt, which the worker
extends as it heartbeats and names in its report: the report's transaction deletes the
message of each report the ledger answered. On a ledger that cannot (SQLite, or SQS as
the transport) both routes answer 404 ``batch_claims_unsupported`` and the worker
receives, then claims, as before.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

import anyio
import msgspec
from litestar import Request, post
from litestar.di import NamedDependency

from adapters.http.access import principal_of
from adapters.http.bodies import Body, WorkerTime, read_body
from adapters.http.jobs import WORKER
from adapters.http.problems import ApiError
from adapters.http.services import JobReads
from adapters.local_queue.claims import MAX_CLAIMS, ClaimedMessage, ClaimRequest
from adapters.service.queue_claims import QueueClaims
from ledger.commands import (
    AnyCommand,
    Attempt,
    CompleteJob,
    ErrorText,
    FailJob,
    Name,
    QueueName,
    ReportCancelled,
)
from ledger.errors import LedgerError
from ledger.ports.queue_store import DEFAULT_MAX_RECEIVES, DEFAULT_QUEUE

MAX_VISIBILITY = 43_200.0
MIN_ANSWER, MAX_ANSWER = 1.0, 300.0


class ClaimsRequest(Body, frozen=True):
    """Claim up to ``max`` jobs (1 to 100) for ``worker_id``."""

    worker_id: Name
    max: int = 1
    queues: Annotated[list[QueueName], msgspec.Meta(min_length=1, max_length=100)] | None = None
    visibility_seconds: Annotated[float, msgspec.Meta(gt=0, le=MAX_VISIBILITY)] = 30.0
    answer_within_seconds: Annotated[
        float, msgspec.Meta(ge=MIN_ANSWER, le=MAX_ANSWER)
    ] | None = None
    """The worker waits this long for the answer (1 to 300 s): a claim that has not
    answered by then answers 503 ``claim_timed_out`` and hands back the jobs it takes
    (ADR 207), instead of claiming them for a worker that stopped listening. Under a
    second is refused (422): no claim is promised that fast."""


class ClaimsResult(msgspec.Struct, frozen=True):
    jobs: list[ClaimedMessage]
    """The jobs claimed (their attempts are open), highest priority first; empty when none
    is waiting. Extend each message's visibility while the job runs (heartbeats)."""


class Report(Body, frozen=True):
    job_id: UUID
    attempt: Attempt
    outcome: Literal["completed", "failed", "cancelled"]
    result: Any = None
    error: ErrorText | None = None
    error_normalised: bool = False
    receipt: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    """The message's receipt from the claim: deleted with the report."""
    worker_time: WorkerTime | None = None


class ReportsRequest(Body, frozen=True):
    worker_id: Name
    reports: Annotated[list[Report], msgspec.Meta(min_length=1, max_length=MAX_CLAIMS)]


class ReportResult(msgspec.Struct, frozen=True, omit_defaults=True):
    job_id: UUID
    status: str | None = None
    """The job's status after the report (``completed``, ``pending``, ...), if recorded."""
    code: str | None = None
    """The refusal's code (``attempt_superseded``, ``job_not_found``, ...), if refused."""
    detail: str | None = None


class ReportsResult(msgspec.Struct, frozen=True):
    results: list[ReportResult]


def _supported(claims: QueueClaims | None) -> QueueClaims:
    if claims is None:
        raise ApiError(
            404, "this ledger cannot claim from the local queue in one round trip; "
            "receive, then POST /jobs/{id}/claim", code="batch_claims_unsupported",
        )
    return claims


@post(
    "/workers/claims", status_code=200, opt={"access": WORKER, "body": ClaimsRequest},
    summary="Claim up to N jobs of the local queue in one transaction", tags=["workers"],
)
async def worker_claims(
    request: Request[Any, Any, Any], claims: NamedDependency[QueueClaims | None],
) -> ClaimsResult:
    """Receive up to ``max`` visible messages, open their jobs' attempts and settle the
    refused ones (paused or full queue, not due, not pending) in one transaction; 400
    ``invalid_max`` unless ``max`` is 1 to 100."""
    body = await read_body(request, ClaimsRequest)
    if not 1 <= body.max <= MAX_CLAIMS:
        raise ApiError(400, f"max must be 1 to {MAX_CLAIMS}, got {body.max}", code="invalid_max")
    claim = _supported(claims).claim(ClaimRequest(
        worker_id=body.worker_id, limit=body.max, visibility=body.visibility_seconds,
        queues=body.queues, queue_name=DEFAULT_QUEUE, max_receives=DEFAULT_MAX_RECEIVES,
        customer_id=principal_of(request).customer_id,
    ))
    if body.answer_within_seconds is None:
        return ClaimsResult(jobs=await claim)
    with anyio.move_on_after(body.answer_within_seconds):
        return ClaimsResult(jobs=await claim)
    raise ApiError(
        503, f"the claim did not answer within {body.answer_within_seconds:g}s; nothing is "
        "claimed for this request (jobs its transaction took are handed back)",
        code="claim_timed_out", headers={"Retry-After": "1"},
    )


@post(
    "/workers/reports", status_code=200, opt={"access": WORKER, "body": ReportsRequest},
    summary="Report several attempts' ends, deleting their messages", tags=["workers"],
)
async def worker_reports(
    request: Request[Any, Any, Any], claims: NamedDependency[QueueClaims | None],
    jobs: NamedDependency[JobReads],
) -> ReportsResult:
    """Record each report (as ``/jobs/{id}/complete``, ``/fail``, ``/cancelled``) and
    delete the message named by its receipt when the ledger answered it, in one
    transaction; one result per report, in order."""
    body = await read_body(request, ReportsRequest)
    queue_claims = _supported(claims)
    principal = principal_of(request)
    commands: list[AnyCommand] = []
    receipts: list[tuple[int, str] | None] = []
    for report in body.reports:
        await jobs.check_job_access(principal, report.job_id)
        commands.append(_command(body.worker_id, report))
        receipts.append(_receipt(report.receipt))
    results = await queue_claims.report(commands, receipts, DEFAULT_QUEUE)
    return ReportsResult(results=[
        ReportResult(job_id=r.job_id, code=result.code, detail=str(result))
        if isinstance(result, LedgerError) else ReportResult(job_id=r.job_id, status=result.status)
        for r, result in zip(body.reports, results, strict=True)
    ])


def _command(worker_id: str, report: Report) -> AnyCommand:
    job_id, attempt, time = report.job_id, report.attempt, report.worker_time
    if report.outcome == "completed":
        return CompleteJob(job_id=job_id, attempt=attempt, worker_id=worker_id,
                           result=report.result, worker_time=time)  # fmt: skip
    if report.outcome == "cancelled":
        return ReportCancelled(job_id=job_id, attempt=attempt, worker_id=worker_id,
                               worker_time=time)  # fmt: skip
    if report.error is None:
        raise ApiError(422, "a failed report needs its error", code="invalid_body")
    return FailJob(job_id=job_id, attempt=attempt, worker_id=worker_id, error=report.error,
                   error_normalised=report.error_normalised, worker_time=time)  # fmt: skip


def _receipt(receipt: str | None) -> tuple[int, str] | None:
    if receipt is None:
        return None
    seq, _, token = receipt.partition(":")
    if not seq.isdigit() or not token or len(seq) > 18:
        raise ApiError(422, f"not a local queue receipt: {receipt[:40]!r}", code="invalid_body")
    return int(seq), token


ROUTES = [worker_claims, worker_reports]
