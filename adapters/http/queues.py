"""A customer's queue, and the dead letters (list and redrive), read from ``job_status``."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery, PathParameter, QueryParameter

from adapters.http.access import actor_of, principal_of, rule
from adapters.http.bodies import MAX_BATCH, RedriveOutcome, RedriveRequest, RedriveResult, read_body
from adapters.http.problems import ApiError
from adapters.http.services import JobReads, ReadPool, Writer
from ledger.access import Role
from ledger.application import Result
from ledger.commands import RedriveJob
from ledger.errors import IllegalTransition, JobNotFound, LedgerError
from ledger.status import Status
from projections.queries.job_status import JobStatus, JobStatusQueries

CUSTOMER_QUEUE = rule(Role.SERVICE, preset="public", customer_param="customer_id")
DLQ_READ = rule(Role.STAFF, preset="staff")
DLQ_REDRIVE = rule(Role.STAFF, preset="admin")

Limit = Annotated[int, QueryParameter(ge=1, le=500, description="At most this many jobs.")]


class QueueCounts(msgspec.Struct, frozen=True):
    pending: int = 0
    in_progress: int = 0
    completed: int = 0
    dead_lettered: int = 0
    scheduled: int = 0
    cancelled: int = 0
    total: int = 0


class CustomerQueue(msgspec.Struct, frozen=True):
    customer_id: str
    counts: QueueCounts
    jobs: list[JobStatus]


class DeadLetters(msgspec.Struct, frozen=True):
    count: int
    jobs: list[JobStatus]


def _counts(by_status: dict[str, int]) -> QueueCounts:
    known = {s.value: by_status.get(s.value, 0) for s in Status}
    return QueueCounts(**known, total=sum(by_status.values()))


@get(
    "/queue/{customer_id:str}", opt={"access": CUSTOMER_QUEUE},
    summary="A customer's jobs and counts", tags=["queues"],
)
async def customer_queue(
    customer_id: Annotated[str, PathParameter(min_length=1, max_length=200)],
    views: NamedDependency[ReadPool],
    status: FromQuery[Status | None] = None,
    limit: Limit = 100,
) -> CustomerQueue:
    """The customer's jobs (oldest first, optionally of one status) and how many it has in
    each status. Rate limited with the ``public`` preset."""
    status_name = status.value if status is not None else None

    def read(store: Any) -> tuple[list[JobStatus], dict[str, int]]:
        queries = JobStatusQueries(store)
        jobs = queries.find(customer_id=customer_id, status=status_name, limit=limit)
        return jobs, queries.counts(customer_id=customer_id)

    jobs, counts = await views.read(read)
    return CustomerQueue(customer_id=customer_id, counts=_counts(counts), jobs=jobs)


@get("/dlq", opt={"access": DLQ_READ}, summary="Dead-lettered jobs", tags=["dead letters"])
async def dead_letters(
    request: Request[Any, Any, Any], views: NamedDependency[ReadPool], limit: Limit = 100
) -> DeadLetters:
    """Dead-lettered jobs, oldest first (a customer-scoped key sees its customer's)."""
    customer = principal_of(request).customer_id
    jobs = await views.read(
        lambda store: JobStatusQueries(store).dead_lettered(customer_id=customer, limit=limit)
    )
    return DeadLetters(count=len(jobs), jobs=jobs)


@post(
    "/dlq/redrive", status_code=200, opt={"access": DLQ_REDRIVE, "body": RedriveRequest},
    summary="Redrive dead-lettered jobs", tags=["dead letters"],
)
async def redrive(
    request: Request[Any, Any, Any],
    writer: NamedDependency[Writer],
    jobs: NamedDependency[JobReads],
    views: NamedDependency[ReadPool],
) -> RedriveResult:
    """Give dead-lettered jobs a fresh attempt budget: the ones named in ``job_ids``, or
    with ``all`` every dead-lettered job (up to 1000 a call). ``dry_run`` only says which."""
    body = await read_body(request, RedriveRequest)
    if body.all == (body.job_ids is not None):
        raise ApiError(422, "give either job_ids or all: true", code="invalid_body")
    principal = principal_of(request)
    if body.job_ids is not None:
        ids = list(dict.fromkeys(body.job_ids))
    else:
        customer = principal.customer_id
        rows = await views.read(
            lambda store: JobStatusQueries(store).dead_lettered(
                customer_id=customer, limit=MAX_BATCH
            )
        )
        ids = [row.job_id for row in rows]
    visible: list[UUID] = []
    results: dict[UUID, RedriveOutcome] = {}
    for job_id in ids:
        try:
            await jobs.check_job_access(principal, job_id)
            job = await jobs.job_status(job_id)
        except JobNotFound as error:
            results[job_id] = RedriveOutcome(job_id, "not_found", str(error))
            continue
        if job.status != Status.DEAD_LETTERED and body.dry_run:
            results[job_id] = RedriveOutcome(
                job_id, "not_dead_lettered", f"job {job_id} is {job.status}"
            )
            continue
        visible.append(job_id)
    if body.dry_run:
        for job_id in visible:
            results[job_id] = RedriveOutcome(job_id, "would_redrive")
    else:
        actor = actor_of(principal)
        outcomes = await writer.execute_many([RedriveJob(job_id=j, actor=actor) for j in visible])
        for job_id, outcome in zip(visible, outcomes, strict=True):
            results[job_id] = _outcome(job_id, outcome)
    ordered = [results[j] for j in ids]
    return RedriveResult(
        dry_run=body.dry_run,
        redriven=sum(1 for r in ordered if r.result == "redriven"),
        results=ordered,
    )


def _outcome(job_id: UUID, outcome: Result) -> RedriveOutcome:
    if not isinstance(outcome, LedgerError):
        return RedriveOutcome(job_id, "redriven")
    if isinstance(outcome, IllegalTransition):
        return RedriveOutcome(job_id, "not_dead_lettered", str(outcome))
    if isinstance(outcome, JobNotFound):
        return RedriveOutcome(job_id, "not_found", str(outcome))
    return RedriveOutcome(job_id, "rejected", str(outcome))


ROUTES = [customer_queue, dead_letters, redrive]
