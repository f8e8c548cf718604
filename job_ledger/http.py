"""The client over the HTTP API with an API key: :class:`Client` (sync) and
:class:`AsyncClient`, one interface (ADR 120).

Every call has a timeout. GETs, and enqueues that carry an idempotency key (every item
of a batch), are retried on connection errors and 503 with capped jittered backoff
(:class:`~job_ledger.calls.Backoff`); any other POST is sent once, so a keyless enqueue is
never doubled by the client. Error answers raise the ledger's own exceptions
(:mod:`job_ledger.errors`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Unpack
from uuid import UUID

import anyio
import httpx

from job_ledger import calls
from job_ledger.calls import Backoff, Call
from job_ledger.errors import unavailable
from job_ledger.types import ControlOutcome, Enqueued, HistoryEvent, JobRequest, JobState
from job_ledger.waiting import EnqueueOptions, wait_async, wait_sync

if TYPE_CHECKING:
    from pathlib import Path

    from job_ledger.local import AsyncLocalClient, LocalClient

USER_AGENT = "job-ledger-client"
DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_BACKOFF = Backoff()


def _headers(api_key: str | None) -> dict[str, str]:
    headers = {"User-Agent": USER_AGENT, "Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


def _failed(call: Call, error: Exception) -> Exception:
    return unavailable(f"{call.method} {call.path}: {type(error).__name__}: {error}")


def _delay_after_failure(call: Call, backoff: Backoff, retry: int, error: Exception) -> float:
    """The wait before trying ``call`` again after a connection error; raises the
    ledger's error when the call may not be retried or this was its last try."""
    if retry == backoff.tries - 1 or not calls.retryable(call, None):
        raise _failed(call, error) from None
    return backoff.delay(retry, None)


def _delay_after_refusal(
    call: Call, backoff: Backoff, retry: int, response: httpx.Response
) -> float:
    """The wait before trying ``call`` again after an answer of 300 or more; raises the
    answer's error when the call may not be retried or this was its last try."""
    refused = calls.answer_error(
        call, response.status_code, response.content, response.headers.get("Retry-After")
    )
    if retry == backoff.tries - 1 or not calls.retryable(call, response.status_code):
        raise refused
    return backoff.delay(retry, getattr(refused, "retry_after", None))


class Client:
    """The ledger over HTTP, synchronously. ``customer_id`` is the default customer of
    the jobs it enqueues (a service key scoped to a customer may only enqueue its own)."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        api_key: str | None = None,
        *,
        customer_id: str | None = None,
        timeout: float = 10.0,
        backoff: Backoff = DEFAULT_BACKOFF,
        http: httpx.Client | None = None,
    ) -> None:
        self.customer_id = customer_id
        self.backoff = backoff
        self._http = http or httpx.Client(
            base_url=base_url.rstrip("/"), headers=_headers(api_key),
            timeout=httpx.Timeout(timeout),
        )

    @staticmethod
    def local(
        data_dir: str | Path | None = None, *, database_url: str | None = None,
        customer_id: str | None = None,
    ) -> LocalClient:
        """The same interface on a ledger in this process (the embedded default under
        ``data_dir``, or PostgreSQL at ``database_url``)."""
        from job_ledger.local import LocalClient

        return LocalClient.open(data_dir, database_url=database_url, customer_id=customer_id)

    def enqueue(self, payload: Any = None, **options: Unpack[EnqueueOptions]) -> Enqueued:
        """Enqueue one job (``POST /jobs``)."""
        job = JobRequest(payload=payload, **options)
        return calls.decode_enqueued(self._send(calls.enqueue(job, self.customer_id)))

    def enqueue_many(self, jobs: Sequence[JobRequest]) -> list[Enqueued]:
        """Enqueue up to 1,000 jobs in one request (``POST /jobs/batch``)."""
        return calls.decode_batch(self._send(calls.enqueue_many(jobs, self.customer_id)))

    def get(self, job_id: UUID | str) -> JobState:
        return calls.decode_state(self._send(calls.get(calls.as_uuid(job_id))))

    def history(self, job_id: UUID | str) -> list[HistoryEvent]:
        return calls.decode_history(self._send(calls.history(calls.as_uuid(job_id))))

    def cancel(self, job_id: UUID | str, reason: str | None = None) -> ControlOutcome:
        return calls.decode_control(self._send(calls.cancel(calls.as_uuid(job_id), reason)))

    def wait(self, job_id: UUID | str, timeout: float = 60.0) -> JobState:
        """The job once it is terminal; :class:`~job_ledger.errors.WaitTimedOut` after
        ``timeout`` seconds."""
        return wait_sync(self.get, calls.as_uuid(job_id), timeout)

    def _send(self, call: Call) -> bytes:
        for retry in range(self.backoff.tries):
            try:
                response = self._http.request(
                    call.method, call.path, content=call.body, headers=call.headers
                )
            except httpx.TransportError as error:
                time.sleep(_delay_after_failure(call, self.backoff, retry, error))
                continue
            if response.status_code < 300:
                return response.content
            time.sleep(_delay_after_refusal(call, self.backoff, retry, response))
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class AsyncClient:
    """:class:`Client`'s interface, async (any anyio backend)."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        api_key: str | None = None,
        *,
        customer_id: str | None = None,
        timeout: float = 10.0,
        backoff: Backoff = DEFAULT_BACKOFF,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.customer_id = customer_id
        self.backoff = backoff
        self._http = http or httpx.AsyncClient(
            base_url=base_url.rstrip("/"), headers=_headers(api_key),
            timeout=httpx.Timeout(timeout),
        )

    @staticmethod
    def local(
        data_dir: str | Path | None = None, *, database_url: str | None = None,
        customer_id: str | None = None,
    ) -> AsyncLocalClient:
        from job_ledger.local import AsyncLocalClient, LocalClient

        return AsyncLocalClient(
            LocalClient.open(data_dir, database_url=database_url, customer_id=customer_id)
        )

    async def enqueue(self, payload: Any = None, **options: Unpack[EnqueueOptions]) -> Enqueued:
        job = JobRequest(payload=payload, **options)
        return calls.decode_enqueued(await self._send(calls.enqueue(job, self.customer_id)))

    async def enqueue_many(self, jobs: Sequence[JobRequest]) -> list[Enqueued]:
        return calls.decode_batch(await self._send(calls.enqueue_many(jobs, self.customer_id)))

    async def get(self, job_id: UUID | str) -> JobState:
        return calls.decode_state(await self._send(calls.get(calls.as_uuid(job_id))))

    async def history(self, job_id: UUID | str) -> list[HistoryEvent]:
        return calls.decode_history(await self._send(calls.history(calls.as_uuid(job_id))))

    async def cancel(self, job_id: UUID | str, reason: str | None = None) -> ControlOutcome:
        call = calls.cancel(calls.as_uuid(job_id), reason)
        return calls.decode_control(await self._send(call))

    async def wait(self, job_id: UUID | str, timeout: float = 60.0) -> JobState:
        return await wait_async(self.get, calls.as_uuid(job_id), timeout)

    async def _send(self, call: Call) -> bytes:
        for retry in range(self.backoff.tries):
            try:
                response = await self._http.request(
                    call.method, call.path, content=call.body, headers=call.headers
                )
            except httpx.TransportError as error:
                await anyio.sleep(_delay_after_failure(call, self.backoff, retry, error))
                continue
            if response.status_code < 300:
                return response.content
            await anyio.sleep(_delay_after_refusal(call, self.backoff, retry, response))
        raise AssertionError("unreachable")  # pragma: no cover

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
