"""A fix to moto's SQS server for tests that send and delete from many threads at once.

moto's ``Queue.delete_message`` rebuilds the queue's message list from a copy without
holding the queue's message lock, while ``Queue.add_message`` appends under that lock. A
message sent (by another request thread of the server) while a delete rebuilds the list
is dropped: the rebuilt list never had it. SQS never loses a message that way; the fault
suite saw it as a job that stayed pending with no message anywhere (one in about two
2,000-job runs, more likely with a backlog in the queue). :func:`serialize_sqs_deletes`
makes deletes take the same lock. ``tests/unit/test_moto_sqs_deletes.py`` shows the loss
without it.
"""

from __future__ import annotations

import functools
from typing import Any


def serialize_sqs_deletes() -> None:
    """Make moto's SQS deletes hold the queue's message lock (idempotent; in-process moto
    only, which ``tests/support/sqs.py`` runs)."""
    from moto.sqs.models import Queue

    original = Queue.delete_message
    if getattr(original, "_serialized", False):
        return

    @functools.wraps(original)
    def delete_message(self: Queue, receipt_handle: str) -> None:
        with self._messages_lock:
            original(self, receipt_handle)

    delete_message._serialized = True  # type: ignore[attr-defined]
    Queue.delete_message = delete_message  # type: ignore[method-assign]


def unpatched_delete(queue: Any, receipt_handle: str) -> None:
    """moto's own ``delete_message`` (for the test that shows the race)."""
    from moto.sqs.models import Queue

    original = getattr(Queue.delete_message, "__wrapped__", Queue.delete_message)
    original(queue, receipt_handle)
