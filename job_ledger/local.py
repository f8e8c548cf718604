"""The client's interface on a ledger in this process (ADR 120): :class:`LocalClient`
and :class:`AsyncLocalClient`, built through the composition root
(:func:`adapters.service.bootstrap.build`) on the embedded default or PostgreSQL.

Commands go through a :class:`~adapters.service.batching.BatchWriter`, so enqueues from
many threads share transactions; reads load the job from the ledger (never a view that
may lag). Errors are the ledger's own, raised as they are. A running ``ledger serve``
(or its dispatcher) on the same data sends the jobs to the workers, from the log.
"""

from __future__ import annotations

import dataclasses
import functools
import getpass
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar, Unpack
from uuid import UUID

import anyio.to_thread
import msgspec

from adapters.service.batching import BatchWriter
from adapters.service.bootstrap import Container, build, load_settings, utc_now
from adapters.tracing import current_traceparent
from job_ledger import calls
from job_ledger.transactional import enqueue_in
from job_ledger.types import ControlOutcome, Enqueued, HistoryEvent, JobRequest, JobState
from job_ledger.waiting import EnqueueOptions, wait_async, wait_sync
from ledger.application import Result
from ledger.commands import AnyCommand, CancelJob, EnqueueJob, Outcome, validated
from ledger.errors import InvalidCommand, LedgerError
from ledger.policies.controls import scheduled_until
from projections.queries.job_status import status_of_job
from projections.timeline import event_record

T = TypeVar("T")
MAX_BATCH = 1000
"""The most jobs one ``enqueue_many`` takes (as ``POST /jobs/batch``)."""


def local_actor() -> str:
    """``client:<OS user>``: who a local client's controls are recorded as."""
    try:
        return f"client:{getpass.getuser()}"
    except (KeyError, OSError):
        return f"client:uid{os.getuid()}"


def command_of(job: JobRequest, customer: str | None) -> EnqueueJob:
    """``job`` as the ledger's command, checked as ``POST /jobs`` checks its body."""
    try:
        command = validated(msgspec.convert(job.body(customer), EnqueueJob))
    except (msgspec.ValidationError, ValueError) as error:
        raise InvalidCommand(str(error)) from None
    scheduled_until(command.run_at, command.delay_seconds, utc_now())
    traceparent = current_traceparent()  # the caller's span (ADR 125)
    if traceparent is not None:
        command = msgspec.structs.replace(command, traceparent=traceparent)
    return command


def commands_of(jobs: Sequence[JobRequest], customer: str | None) -> list[AnyCommand]:
    """Every job's command, or :class:`InvalidCommand` naming the first bad item (nothing
    is enqueued then)."""
    if not 0 < len(jobs) <= MAX_BATCH:
        raise InvalidCommand(f"enqueue_many takes 1 to {MAX_BATCH} jobs, not {len(jobs)}")
    commands: list[AnyCommand] = []
    for index, job in enumerate(jobs):
        try:
            commands.append(command_of(job, customer))
        except InvalidCommand as error:
            raise InvalidCommand(f"jobs[{index}]: {error}") from None
    return commands


class LocalClient:
    """:class:`~job_ledger.Client`'s interface on the ledger in ``container``."""

    def __init__(
        self, container: Container, *, customer_id: str | None = None, owns: bool = False,
        timeout: float = 30.0,
    ) -> None:
        self.container = container
        self.customer_id = customer_id
        self.timeout = timeout
        self._owns = owns
        self._writer = BatchWriter(
            container.ledger, utc_now, max_batch=container.settings.ledger_batch_max
        )
        self._actor = local_actor()

    @classmethod
    def open(
        cls, data_dir: str | Path | None = None, *, database_url: str | None = None,
        customer_id: str | None = None,
    ) -> LocalClient:
        """The ledger the environment names, with ``data_dir`` or ``database_url`` instead
        when given (closed with the client)."""
        changes: dict[str, Any] = {}
        if data_dir is not None:
            changes["ledger_data_dir"] = Path(data_dir)
        if database_url is not None:
            changes["database_url"] = database_url
        settings = dataclasses.replace(load_settings(), **changes)
        return cls(build(settings), customer_id=customer_id, owns=True)

    def enqueue(self, payload: Any = None, **options: Unpack[EnqueueOptions]) -> Enqueued:
        command = command_of(JobRequest(payload=payload, **options), self.customer_id)
        return _enqueued(self._run([command])[0])

    def enqueue_many(self, jobs: Sequence[JobRequest]) -> list[Enqueued]:
        """All or nothing for bad input; an idempotency key used for another job raises
        after the other jobs were enqueued (as over HTTP)."""
        return [_enqueued(result) for result in self._run(commands_of(jobs, self.customer_id))]

    def enqueue_in(
        self, connection: Any, payload: Any = None, **options: Unpack[EnqueueOptions]
    ) -> Enqueued:
        """Enqueue within the application's own psycopg ``connection`` and its open
        transaction (PostgreSQL only): the job exists if and only if it commits."""
        command = command_of(JobRequest(payload=payload, **options), self.customer_id)
        return enqueue_in(self.container.ledger, connection, command, utc_now())

    def get(self, job_id: UUID | str) -> JobState:
        job = self.container.ledger.get_job(calls.as_uuid(job_id))
        return msgspec.convert(msgspec.to_builtins(status_of_job(job)), JobState)

    def history(self, job_id: UUID | str) -> list[HistoryEvent]:
        events = self.container.ledger.history(calls.as_uuid(job_id))
        return [msgspec.convert(event_record(event), HistoryEvent) for event in events]

    def cancel(self, job_id: UUID | str, reason: str | None = None) -> ControlOutcome:
        command = CancelJob(job_id=calls.as_uuid(job_id), actor=self._actor, reason=reason)
        outcome = _outcome(self._run([command])[0])
        return ControlOutcome(
            job_id=outcome.job_id, status=outcome.status, attempt=outcome.attempt,
            cancel_requested=outcome.cancel_requested,
        )

    def wait(self, job_id: UUID | str, timeout: float = 60.0) -> JobState:
        return wait_sync(self.get, calls.as_uuid(job_id), timeout)

    def _run(self, commands: Sequence[AnyCommand]) -> list[Result]:
        futures: list[Future[Result]] = [self._writer.submit(c) for c in commands]
        return [future.result(timeout=self.timeout) for future in futures]

    def close(self) -> None:
        self._writer.close()
        if self._owns:
            self.container.close()

    def __enter__(self) -> LocalClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _outcome(result: Result) -> Outcome:
    if isinstance(result, LedgerError):
        raise result
    return result


def _enqueued(result: Result) -> Enqueued:
    outcome = _outcome(result)
    return Enqueued(job_id=outcome.job_id, status=outcome.status, created=outcome.created)


class AsyncLocalClient:
    """:class:`LocalClient` for async code: each call runs in a worker thread."""

    def __init__(self, local: LocalClient) -> None:
        self.local = local

    async def _call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await anyio.to_thread.run_sync(functools.partial(function, *args, **kwargs))

    async def enqueue(self, payload: Any = None, **options: Unpack[EnqueueOptions]) -> Enqueued:
        return await self._call(self.local.enqueue, payload, **options)

    async def enqueue_many(self, jobs: Sequence[JobRequest]) -> list[Enqueued]:
        return await self._call(self.local.enqueue_many, jobs)

    async def get(self, job_id: UUID | str) -> JobState:
        return await self._call(self.local.get, job_id)

    async def history(self, job_id: UUID | str) -> list[HistoryEvent]:
        return await self._call(self.local.history, job_id)

    async def cancel(self, job_id: UUID | str, reason: str | None = None) -> ControlOutcome:
        return await self._call(self.local.cancel, job_id, reason)

    async def wait(self, job_id: UUID | str, timeout: float = 60.0) -> JobState:
        return await wait_async(self.get, calls.as_uuid(job_id), timeout)

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self.local.close)

    async def __aenter__(self) -> AsyncLocalClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
