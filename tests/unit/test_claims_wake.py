"""An idle worker's pause after an empty claim ends when a send wakes its queue, not only
when the poll interval is over, and never sooner than WAKE_GAP after that claim (ADR 210)."""

from __future__ import annotations

import time
from uuid import uuid4

import anyio

from adapters.local_queue.claims import ClaimedMessage, ClaimRequest
from adapters.memory.queue import memory_transport
from adapters.worker.batch_claims import WAKE_GAP, BatchClaimer
from adapters.worker.config import WorkerConfig
from ledger.ports.transport import JobMessage

POLL = 30.0


class EmptyPort:
    batch_claims = True

    def __init__(self) -> None:
        self.calls = 0

    async def claim_batch(self, request: ClaimRequest) -> list[ClaimedMessage]:
        self.calls += 1
        return []


def test_a_send_ends_the_pause_after_an_empty_claim() -> None:
    async def main() -> tuple[float, float]:
        queue = memory_transport(poll_interval=POLL)
        claimer = BatchClaimer(EmptyPort(), queue, WorkerConfig())  # type: ignore[arg-type]
        claimed, pause = await claimer.claim(4, draining=False)
        assert (claimed, pause) == ([], POLL)
        claimed_at = time.monotonic()

        async def send_soon() -> None:
            await anyio.sleep(0.05)
            await queue.send(JobMessage(job_id=uuid4(), attempt=0, customer_id="c", dedup_key="k"))

        async with anyio.create_task_group() as tg:
            tg.start_soon(send_soon)
            with anyio.fail_after(5):  # the poll interval is 30 s
                await claimer.pause(pause)
        return claimed_at, time.monotonic()

    claimed_at, woke_at = anyio.run(main)
    assert 0.04 <= woke_at - claimed_at < 2.0


def test_a_wake_right_after_an_empty_claim_waits_for_the_gap() -> None:
    async def main() -> float:
        queue = memory_transport(poll_interval=POLL)
        claimer = BatchClaimer(EmptyPort(), queue, WorkerConfig())  # type: ignore[arg-type]
        await claimer.claim(4, draining=False)
        started = time.monotonic()
        async with anyio.create_task_group() as tg:
            tg.start_soon(claimer.pause, POLL)
            await anyio.sleep(0)
            await queue.send(JobMessage(job_id=uuid4(), attempt=0, customer_id="c", dedup_key="k"))
        return time.monotonic() - started

    waited = anyio.run(main)
    assert WAKE_GAP * 0.9 <= waited < 2.0


def test_after_a_claim_that_found_jobs_a_pause_is_a_plain_sleep() -> None:
    async def main() -> float:
        queue = memory_transport(poll_interval=POLL)
        claimer = BatchClaimer(EmptyPort(), queue, WorkerConfig())  # type: ignore[arg-type]
        started = time.monotonic()
        async with anyio.create_task_group() as tg:
            tg.start_soon(claimer.pause, 0.3)  # no claim yet: not after an empty one
            await anyio.sleep(0.01)
            await queue.send(JobMessage(job_id=uuid4(), attempt=0, customer_id="c", dedup_key="k"))
        return time.monotonic() - started

    assert anyio.run(main) >= 0.29
