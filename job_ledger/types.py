"""The client's typed requests and results (msgspec structs), the same over HTTP and
in-process."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import msgspec

from ledger.status import Status


class JobRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One job to enqueue (:meth:`~job_ledger.Client.enqueue_many` takes a list).

    ``customer_id`` defaults to the client's; ``delay`` (seconds or a ``timedelta``) and
    ``run_at`` (a time with a zone) are exclusive; an ``idempotency_key`` makes the
    enqueue safe to repeat (the same key of a customer names the same job) and lets the
    client retry it after a lost answer."""

    payload: Any = None
    customer_id: str | None = None
    queue: str = "default"
    priority: int = 0
    delay: float | timedelta | None = None
    run_at: datetime | None = None
    max_attempts: int = 3
    idempotency_key: str | None = None

    def body(self, default_customer: str | None) -> dict[str, Any]:
        """The ``POST /jobs`` body (fields at their default left out)."""
        customer = self.customer_id or default_customer
        if customer is None:
            raise ValueError("no customer_id: give one to the job or to the client")
        body: dict[str, Any] = {"customer_id": customer, "payload": self.payload}
        if self.queue != "default":
            body["queue"] = self.queue
        if self.priority:
            body["priority"] = self.priority
        if self.max_attempts != 3:
            body["max_attempts"] = self.max_attempts
        if self.idempotency_key is not None:
            body["idempotency_key"] = self.idempotency_key
        if self.run_at is not None:
            body["run_at"] = self.run_at
        if self.delay is not None:
            body["delay_seconds"] = seconds(self.delay)
        return body


def seconds(delay: float | timedelta) -> float:
    return delay.total_seconds() if isinstance(delay, timedelta) else float(delay)


class Enqueued(msgspec.Struct, frozen=True):
    """An enqueued job; ``created`` is false when its idempotency key named a job
    enqueued before."""

    job_id: UUID
    status: str
    created: bool


class JobState(msgspec.Struct, frozen=True):
    """A job's state (``GET /jobs/{id}``)."""

    job_id: UUID
    customer_id: str
    queue: str
    status: str
    attempt: int
    attempts_used: int
    max_attempts: int
    enqueued_at: datetime
    priority: int = 0
    worker_id: str | None = None
    started_at: datetime | None = None
    last_heartbeat_at: datetime | None = None
    finished_at: datetime | None = None
    not_before: datetime | None = None
    last_error: str | None = None
    version: int = 0

    @property
    def terminal(self) -> bool:
        """Completed, dead-lettered or cancelled: :meth:`~job_ledger.Client.wait` returns."""
        return Status(self.status).is_terminal


class HistoryEvent(msgspec.Struct, frozen=True):
    """One event of a job's history, oldest first."""

    type: str
    version: int
    recorded_at: datetime
    data: dict[str, Any]


class ControlOutcome(msgspec.Struct, frozen=True):
    """What a control (cancel) did: a pending job is ``cancelled``; a running one stays
    ``in_progress`` with ``cancel_requested`` until its worker stops."""

    job_id: UUID
    status: str
    attempt: int
    cancel_requested: bool = False
