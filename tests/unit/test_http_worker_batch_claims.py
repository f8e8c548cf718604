"""An ``--api`` worker claims and reports in batches by default (ADR 155), with an opt-out.

The routes were opt-in over HTTP while a flaky cancel test was blamed on them; the test
was at fault (8425573), so the HTTP port now uses them unless told not to.
"""

from __future__ import annotations

import pytest

from adapters.local_queue.queue import LocalQueue
from adapters.memory.queue import MemoryQueueStore
from adapters.worker import HttpLedger, JobContext, Worker, WorkerConfig

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def handler(ctx: JobContext) -> None:
    return None


@pytest.mark.parametrize(
    ("port_says", "config_says", "batches"),
    [(None, True, True), (False, True, False), (None, False, False)],
)
async def test_the_http_port_claims_in_batches_unless_told_not_to(
    port_says: bool | None, config_says: bool, batches: bool
) -> None:
    port = (HttpLedger("http://127.0.0.1:9", None) if port_says is None
            else HttpLedger("http://127.0.0.1:9", None, batch_claims=port_says))
    queue = LocalQueue(MemoryQueueStore())
    try:
        worker = Worker(handler, queue, port,
                        WorkerConfig(worker_id="w", batch_claims=config_says))  # fmt: skip
        assert (worker._claimer is not None) is batches
    finally:
        await port.aclose()
        await queue.aclose()
