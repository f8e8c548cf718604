"""``POST /jobs/batch``: enqueue up to ``MAX_BATCH`` jobs in one request (ADR 120).

Validation is all-or-nothing: a body that does not decode, an item with a bad field or
text, an item of a customer the key may not enqueue for, or an item with both ``run_at``
and ``delay_seconds`` (or a ``run_at`` too far ahead) refuses the whole request, before
anything is submitted, with a 4xx problem whose ``errors`` name the item (``index``).
The valid batch goes to the batch writer together, so it shares transactions with
itself and the requests in flight. The only refusal known after that is an idempotency
key reused with a different job, which only the stored job can tell: that item's entry
carries the ``code`` and ``detail``, and the others are enqueued (a retry of the same
batch with the same keys is safe).
"""

from __future__ import annotations

import re
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Request, Response, post
from litestar.di import NamedDependency

from adapters.http.access import principal_of
from adapters.http.bodies import MAX_BATCH, Body, EnqueueRequest, read_body
from adapters.http.jobs import SERVICE_WRITE
from adapters.http.problems import ApiError, status_of
from adapters.http.services import Writer
from adapters.service.bootstrap import utc_now
from adapters.tracing import parse_traceparent
from ledger.access import Principal
from ledger.application import Result
from ledger.commands import AnyCommand, EnqueueJob
from ledger.errors import InvalidCommand, InvalidText, LedgerError
from ledger.policies.controls import scheduled_until
from ledger.text import check_value

_ITEM = re.compile(r"\$\.jobs\[(\d+)\]")


class EnqueueBatchRequest(Body, frozen=True):
    """Jobs to enqueue together; each item is a ``POST /jobs`` body."""

    jobs: Annotated[list[EnqueueRequest], msgspec.Meta(min_length=1, max_length=MAX_BATCH)]


class BatchItem(msgspec.Struct, frozen=True, omit_defaults=True):
    """One item's answer: the job (``created`` false when its idempotency key named a job
    enqueued before), or ``code`` and ``detail`` when the ledger refused it."""

    index: int
    job_id: UUID | None = None
    status: str | None = None
    created: bool = False
    code: str | None = None
    detail: str | None = None
    http_status: int | None = None
    """The status ``POST /jobs`` would have answered for a refused item."""


class BatchEnqueued(msgspec.Struct, frozen=True):
    created: int
    replayed: int
    refused: int
    jobs: list[BatchItem]


@post(
    "/jobs/batch", status_code=201,
    opt={"access": SERVICE_WRITE, "body": EnqueueBatchRequest},
    summary="Enqueue many jobs in one request", tags=["jobs"],
)
async def enqueue_batch(
    request: Request[Any, Any, Any], writer: NamedDependency[Writer]
) -> Response[BatchEnqueued]:
    """Enqueue 1 to 1,000 jobs. Any invalid item refuses the whole batch (4xx, ``errors``
    naming its ``index``); an item whose idempotency key was used for a different job is
    answered in its own entry (``code`` ``idempotency_conflict``), the others enqueued."""
    body = await _read(request)
    traceparent = parse_traceparent(request.headers.get("traceparent"))
    commands = _commands(body, principal_of(request), traceparent)
    results = await writer.execute_many(commands)
    items = [_item(index, result) for index, result in enumerate(results)]
    refused = sum(1 for item in items if item.code is not None)
    created = sum(1 for item in items if item.created)
    return Response(
        BatchEnqueued(
            created=created, replayed=len(items) - created - refused, refused=refused,
            jobs=items,
        ),
        status_code=201,
    )


async def _read(request: Request[Any, Any, Any]) -> EnqueueBatchRequest:
    """The body, or the 4xx problem with the failing item's ``index`` when one is named."""
    try:
        return await read_body(request, EnqueueBatchRequest)
    except ApiError as error:
        index = _failing_index(error, await request.body())
        if index is None:
            raise
        raise ApiError(
            error.status, f"jobs[{index}]: {error.detail}", code=error.code,
            headers=error.headers, errors=[{"index": index, "message": error.detail}],
        ) from None


def _failing_index(error: ApiError, raw: bytes) -> int | None:
    found = _ITEM.search(error.detail)
    if found is not None:
        return int(found.group(1))
    if error.code != InvalidText.code:
        return None
    jobs = msgspec.json.decode(raw).get("jobs", [])  # decoded before: only its texts failed
    for index, item in enumerate(jobs):
        try:
            check_value("job", item)
        except InvalidText:
            return index
    return None


def _commands(
    body: EnqueueBatchRequest, principal: Principal, traceparent: str | None = None
) -> list[AnyCommand]:
    now = utc_now()
    commands: list[AnyCommand] = []
    for index, job in enumerate(body.jobs):
        if not principal.sees_customer(job.customer_id):
            raise _refused(
                index, 403, f"this key may only enqueue jobs of customer "
                f"{principal.customer_id!r}", "forbidden",
            )
        try:
            scheduled_until(job.run_at, job.delay_seconds, now)
        except InvalidCommand as error:
            raise _refused(index, 422, str(error), error.code) from None
        commands.append(EnqueueJob(
            customer_id=job.customer_id, queue=job.queue, payload=job.payload,
            max_attempts=job.max_attempts, idempotency_key=job.idempotency_key,
            priority=job.priority, run_at=job.run_at, delay_seconds=job.delay_seconds,
            traceparent=traceparent,
        ))
    return commands


def _refused(index: int, status: int, detail: str, code: str) -> ApiError:
    return ApiError(
        status, f"jobs[{index}]: {detail}", code=code,
        errors=[{"index": index, "code": code, "message": detail}],
    )


def _item(index: int, result: Result) -> BatchItem:
    if isinstance(result, LedgerError):
        return BatchItem(
            index=index, code=result.code, detail=str(result), http_status=status_of(result),
        )
    return BatchItem(
        index=index, job_id=result.job_id, status=result.status, created=result.created
    )


ROUTES = [enqueue_batch]
