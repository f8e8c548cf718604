"""The local queue writes a batch of sends to its store in groups of ``PUT_BATCH`` (one
transaction each), not in SQS's groups of 10."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import uuid4

import anyio

from adapters.local_queue.queue import PUT_BATCH, LocalQueue
from adapters.memory.queue import MemoryQueueStore
from ledger.ports.queue_store import NewMessage
from ledger.ports.transport import JobMessage


class CountingStore(MemoryQueueStore):
    def __init__(self) -> None:
        super().__init__()
        self.puts: list[int] = []

    def put(self, queue: str, messages: Sequence[NewMessage]) -> None:
        self.puts.append(len(messages))
        super().put(queue, messages)


def test_a_batch_of_sends_is_written_in_groups_of_put_batch() -> None:
    store = CountingStore()

    async def main() -> list[str]:
        async with LocalQueue(store) as queue:
            messages = [JobMessage(job_id=uuid4(), attempt=0, customer_id="acme",
                                   dedup_key=f"k{n}") for n in range(1_200)]
            return await queue.send_batch(messages)

    sent = anyio.run(main)
    assert PUT_BATCH == 500
    assert store.puts == [500, 500, 200]  # was 120 writes of 10
    assert len(set(sent)) == 1_200
