"""``wait``, once for the sync and once for the async clients: poll ``get`` with backoff
(50 ms doubling to 1 s) until the job is terminal or ``timeout`` passes (the API has no
long poll)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TypedDict
from uuid import UUID

import anyio

from job_ledger.calls import poll_delays
from job_ledger.errors import WaitTimedOut
from job_ledger.types import JobState


class EnqueueOptions(TypedDict, total=False):
    """``enqueue``'s keyword arguments (see :class:`~job_ledger.types.JobRequest`)."""

    customer_id: str
    queue: str
    priority: int
    delay: float | timedelta
    run_at: datetime
    max_attempts: int
    idempotency_key: str


def wait_sync(get: Callable[[UUID], JobState], job_id: UUID, timeout: float) -> JobState:
    deadline = time.monotonic() + timeout
    delays = poll_delays()
    while True:
        state = get(job_id)
        left = deadline - time.monotonic()
        if state.terminal:
            return state
        if left <= 0:
            raise WaitTimedOut(job_id, timeout, state.status)
        time.sleep(min(left, delays()))


async def wait_async(
    get: Callable[[UUID], Awaitable[JobState]], job_id: UUID, timeout: float
) -> JobState:
    deadline = time.monotonic() + timeout
    delays = poll_delays()
    while True:
        state = await get(job_id)
        left = deadline - time.monotonic()
        if state.terminal:
            return state
        if left <= 0:
            raise WaitTimedOut(job_id, timeout, state.status)
        await anyio.sleep(min(left, delays()))


__all__ = ["EnqueueOptions", "wait_async", "wait_sync"]
