"""The local queue: SQS semantics over a :class:`~ledger.ports.queue_store.QueueStore`."""

from adapters.local_queue.queue import LocalQueue

__all__ = ["LocalQueue"]
