"""The worker's port over the HTTP API, with an API key (role ``worker``).

Every call has a timeout (httpx's, and ``anyio.fail_after`` around the whole exchange).
The API's answers become the ledger's own errors (see :mod:`adapters.worker.port`): 409
``attempt_superseded`` (or any 409 to a report but ``concurrency_exhausted``, which is
:class:`ConcurrencyExhausted`: the report was not applied and is sent again) is
:class:`AttemptSuperseded`, 409
``illegal_transition`` / ``job_not_due`` to a claim are :class:`IllegalTransition` /
:class:`JobNotDue` (with the time it names), 404 :class:`JobNotFound`, 401/403
:class:`WorkerAccessDenied`; 429 ``queue_paused`` / ``queue_at_capacity`` to a claim
are :class:`QueuePaused` / :class:`QueueAtCapacity`; other 429s, 5xx, timeouts and
network errors are :class:`LedgerUnavailable` (with ``Retry-After`` when the API gave one).

The claim's answer carries the job's payload (``POST /jobs/{id}/claim`` returns
``{job_id, attempt, status, payload}``), so a job costs no extra request.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, TypeVar
from uuid import UUID

import anyio
import httpx
import msgspec

from adapters.local_queue.claims import ClaimedMessage, ClaimRequest
from adapters.tracing import parse_traceparent
from adapters.worker.port import (
    BatchClaimsUnsupported,
    Beat,
    ClaimedJob,
    LedgerUnavailable,
    WorkerAccessDenied,
)
from adapters.worker.settled_reports import Report, ReportCommand
from ledger.application import Result
from ledger.commands import CompleteJob, FailJob, Outcome
from ledger.errors import (
    AttemptSuperseded,
    ConcurrencyExhausted,
    IllegalTransition,
    InvalidCommand,
    JobNotDue,
    JobNotFound,
    LedgerError,
    QueueAtCapacity,
    QueuePaused,
)

USER_AGENT = "job-ledger-worker"

T = TypeVar("T")


class _Problem(msgspec.Struct):
    detail: str = ""
    code: str | None = None


class _Claimed(msgspec.Struct):
    job_id: UUID
    attempt: int
    status: str
    payload: Any = None
    traceparent: str | None = None


class _State(msgspec.Struct):
    status: str


class _BeatResult(msgspec.Struct):
    job_id: UUID
    result: str
    cancel_requested: bool = False


class _BeatResults(msgspec.Struct):
    results: list[_BeatResult]


class _Claims(msgspec.Struct):
    jobs: list[ClaimedMessage]


class _ReportResult(msgspec.Struct):
    job_id: UUID
    status: str | None = None
    code: str | None = None
    detail: str = ""


class _ReportResults(msgspec.Struct):
    results: list[_ReportResult]


class _CancelRequested(msgspec.Struct):
    job_id: UUID


class _Cancels(msgspec.Struct):
    cancel_requested: list[_CancelRequested]


KEEPALIVE_SECONDS = 60.0
"""How long an idle connection is kept (httpx's default is 5 s): past the heartbeat
interval (at most 30 s) and under the API's 75 s, so the worker's heartbeats keep going
to the API process that holds its jobs (ADR 181)."""

CANCELS_PER_CALL = 1000
"""The most attempts one ``POST /workers/cancels`` names (the API's limit)."""


class ReportSuperseded(AttemptSuperseded):
    """The API refused a report because its attempt is no longer current (409)."""

    def __init__(self, job_id: UUID, attempt: int, detail: str) -> None:
        self.job_id = job_id
        self.attempt = attempt
        self.current_attempt = -1
        """Unknown to the worker: the API says it in ``detail``."""
        self.status = "unknown"
        LedgerError.__init__(self, detail or f"job {job_id}: attempt {attempt} is superseded")


class HttpLedger:
    """:class:`~adapters.worker.port.LedgerPort` over the job-ledger HTTP API."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        call_timeout: float = 10.0,
        client: httpx.AsyncClient | None = None,
        batch_claims: bool = True,
    ) -> None:
        self.batch_claims = batch_claims
        """Claim and report through ``/workers/claims`` and ``/workers/reports`` (ADR 155;
        an API without them answers 404 and the worker falls back to one call per step).
        ``False`` keeps one call per step (``ledger worker --no-batch-claims``)."""
        headers = {"User-Agent": USER_AGENT}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self.call_timeout = call_timeout
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(
            base_url=base_url.rstrip("/"), headers=headers,
            timeout=httpx.Timeout(call_timeout),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=16,
                                keepalive_expiry=KEEPALIVE_SECONDS),
        )
        if client is not None:
            self._client.headers.update(headers)

    async def claim(self, job_id: UUID, worker_id: str) -> ClaimedJob:
        try:
            response = await self._post(f"/jobs/{job_id}/claim", {"worker_id": worker_id})
        except LedgerUnavailable as error:
            raise _queue_refusal(error) or error from None
        if response.status_code == 409:
            problem = _problem(response)
            if problem.code == "job_not_due":
                found = re.search(r"before (\S+)$", problem.detail)
                raise JobNotDue(job_id, found.group(1) if found else "")
            found = re.search(r" is (\w+): cannot", problem.detail)
            raise IllegalTransition(job_id, found.group(1) if found else "not pending", "claim")
        body = _decode(response, _Claimed)
        return ClaimedJob(
            job_id=body.job_id, attempt=body.attempt, payload=body.payload,
            traceparent=parse_traceparent(body.traceparent),
        )

    @property
    def claim_budget(self) -> float:
        """How long the server may take to answer a claim before it gives up and hands the
        jobs back (ADR 207): a second under this client's own timeout, so the answer still
        arrives (half of it for timeouts under two seconds), kept within the API's 1 to
        300 seconds."""
        budget = max(self.call_timeout / 2, self.call_timeout - 1.0)
        return round(min(300.0, max(1.0, budget)), 3)

    async def claim_batch(self, request: ClaimRequest) -> list[ClaimedMessage]:
        """``POST /workers/claims`` (ADR 155); an API without it (404) is
        :class:`BatchClaimsUnsupported`."""
        body: dict[str, object] = {"worker_id": request.worker_id, "max": request.limit,
                                   "visibility_seconds": request.visibility,
                                   "answer_within_seconds": self.claim_budget}  # fmt: skip
        if request.queues is not None:
            body["queues"] = request.queues
        try:
            response = await self._post("/workers/claims", body)
        except JobNotFound:
            raise BatchClaimsUnsupported("the API has no POST /workers/claims") from None
        return _decode(response, _Claims).jobs

    async def report_batch(
        self, reports: Sequence[Report], queue_name: str
    ) -> list[Result]:
        """``POST /workers/reports``: one result per report (a refusal as its error)."""
        items = [_report_item(command, receipt) for command, receipt in reports]
        worker_id = reports[0][0].worker_id
        response = await self._post("/workers/reports", {"worker_id": worker_id,
                                                         "reports": items})  # fmt: skip
        results: list[Result] = []
        for (command, _), answer in zip(reports, _decode(response, _ReportResults).results,
                                        strict=True):  # fmt: skip
            job_id, attempt = command.job_id, command.attempt
            if answer.status is not None:
                results.append(Outcome(job_id=job_id, status=answer.status, attempt=attempt,
                                       version=0))  # fmt: skip
            elif answer.code in ("attempt_superseded", "unknown_attempt", "illegal_transition"):
                results.append(ReportSuperseded(job_id, attempt, answer.detail))
            elif answer.code in ("invalid_command", "invalid_text"):
                results.append(InvalidCommand(answer.detail))
            else:
                results.append(LedgerUnavailable(answer.detail or str(answer.code)))
        return results

    async def heartbeats(
        self, worker_id: str, attempts: Sequence[tuple[UUID, int]]
    ) -> dict[UUID, Beat]:
        unknown = {job_id: Beat.UNKNOWN for job_id, _ in attempts}
        if not attempts:
            return {}
        jobs = [{"job_id": str(job_id), "attempt": attempt} for job_id, attempt in attempts]
        try:
            response = await self._post("/heartbeats", {"worker_id": worker_id, "jobs": jobs})
            body = _decode(response, _BeatResults)
        except LedgerUnavailable:
            return unknown
        answers = dict(unknown)
        for result in body.results:
            if result.result == "recorded":
                cancel = result.cancel_requested
                answers[result.job_id] = Beat.CANCEL_REQUESTED if cancel else Beat.RECORDED
            elif result.result in ("superseded", "not_found"):
                answers[result.job_id] = Beat.SUPERSEDED
        return answers

    async def complete(self, job_id: UUID, attempt: int, worker_id: str, result: Any) -> str:
        body = {"worker_id": worker_id, "attempt": attempt, "result": result}
        return await self._report(job_id, attempt, "complete", body)

    async def fail(
        self, job_id: UUID, attempt: int, worker_id: str, error: str, *, normalised: bool = False
    ) -> str:
        body: dict[str, object] = {"worker_id": worker_id, "attempt": attempt, "error": error}
        if normalised:
            body["error_normalised"] = True
        return await self._report(job_id, attempt, "fail", body)

    async def cancelled(self, job_id: UUID, attempt: int, worker_id: str) -> str:
        body = {"worker_id": worker_id, "attempt": attempt}
        return await self._report(job_id, attempt, "cancelled", body)

    def requested_cancels(self, attempts: Sequence[tuple[UUID, int]]) -> set[UUID]:
        """Nothing without asking: :meth:`poll_cancels` and the heartbeat answer say it."""
        return set()

    _cancels_route = True
    """False once the API answered 404 (it predates the route): heartbeats tell alone."""

    async def poll_cancels(self, worker_id: str, attempts: Sequence[tuple[UUID, int]]) -> set[UUID]:
        """``POST /workers/cancels`` (1,000 attempts a call); an error is no job."""
        found: set[UUID] = set()
        for start in range(0, len(attempts) if self._cancels_route else 0, CANCELS_PER_CALL):
            jobs = [{"job_id": str(job_id), "attempt": attempt}
                    for job_id, attempt in attempts[start:start + CANCELS_PER_CALL]]
            try:
                response = await self._post("/workers/cancels",
                                            {"worker_id": worker_id, "jobs": jobs})
                body = _decode(response, _Cancels)
            except JobNotFound:
                self._cancels_route = False
                return found
            except LedgerError:
                return found
            found.update(item.job_id for item in body.cancel_requested)
        return found

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def _report(self, job_id: UUID, attempt: int, what: str, body: object) -> str:
        response = await self._post(f"/jobs/{job_id}/{what}", body)
        if response.status_code == 409:
            problem = _problem(response)
            if problem.code == ConcurrencyExhausted.code:  # not applied: send it again
                raise ConcurrencyExhausted(problem.detail)
            raise ReportSuperseded(job_id, attempt, problem.detail)
        return _decode(response, _State).status

    async def _post(self, path: str, body: object) -> httpx.Response:
        """POST ``body``; the response if it is 2xx or 409, else the matching error."""
        content = msgspec.json.encode(body)
        try:
            with anyio.fail_after(self.call_timeout + 1):
                response = await self._client.post(
                    path, content=content, headers={"Content-Type": "application/json"}
                )
        except (httpx.HTTPError, TimeoutError, OSError) as error:
            raise LedgerUnavailable(
                f"POST {path}: {type(error).__name__}: {error}".rstrip(": ")
            ) from None
        status = response.status_code
        if status < 300 or status == 409:
            return response
        problem = _problem(response)
        detail = f"POST {path}: {status} {problem.detail}".strip()
        if status in (401, 403):
            raise WorkerAccessDenied(detail)
        if status == 404:
            raise JobNotFound(path.split("/")[2] if path.startswith("/jobs/") else path)
        if status in (413, 422):
            raise InvalidCommand(detail)
        if status == 429 and problem.code in (QueuePaused.code, QueueAtCapacity.code):
            raise _QueueRefused(problem.detail, problem.code, _retry_after(response))
        raise LedgerUnavailable(detail, retry_after=_retry_after(response))


class _QueueRefused(LedgerUnavailable):
    """A 429 whose problem names a paused or full queue (see :func:`_queue_refusal`)."""

    def __init__(self, detail: str, code: str | None, retry_after: float | None) -> None:
        self.problem_code = code
        super().__init__(detail, retry_after=retry_after)


def _queue_refusal(error: LedgerUnavailable) -> LedgerError | None:
    """The claim's 429 ``queue_paused`` / ``queue_at_capacity`` as the ledger's own
    error, so the worker hands the message back uncounted and waits on that queue."""
    if not isinstance(error, _QueueRefused):
        return None
    found = re.search(r"queue '([^']*)'", error.message)
    queue = found.group(1) if found else ""
    if error.problem_code == QueuePaused.code:
        return QueuePaused(queue)
    limit = re.search(r"maximum of (\d+)", error.message)
    return QueueAtCapacity(queue, int(limit.group(1)) if limit else 0)


def _report_item(command: ReportCommand, receipt: tuple[int, str] | None) -> dict[str, object]:
    item: dict[str, object] = {"job_id": str(command.job_id), "attempt": command.attempt}
    if isinstance(command, CompleteJob):
        item.update(outcome="completed", result=command.result)
    elif isinstance(command, FailJob):
        item.update(outcome="failed", error=command.error,
                    error_normalised=command.error_normalised)  # fmt: skip
    else:
        item["outcome"] = "cancelled"
    if receipt is not None:
        item["receipt"] = f"{receipt[0]}:{receipt[1]}"
    return item


def _problem(response: httpx.Response) -> _Problem:
    try:
        return msgspec.json.decode(response.content, type=_Problem)
    except msgspec.DecodeError:
        return _Problem(detail=response.text[:200])


def _decode(response: httpx.Response, body_type: type[T]) -> T:
    try:
        return msgspec.json.decode(response.content, type=body_type)
    except msgspec.DecodeError as error:
        raise LedgerUnavailable(f"unexpected answer from the API: {error}") from None


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None
