"""moto's SQS loses a message sent while a delete rebuilds the queue
(``tests/support/moto_patches.py``).

Found by the fault suite on SQS: a job stayed pending, its message in neither the queue
nor its dead-letter queue. The send below lands exactly in the window between the end of
``delete_message``'s walk over the messages and its assignment of the rebuilt list.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any
from uuid import uuid4

from tests.support.moto_patches import serialize_sqs_deletes, unpatched_delete

ACCOUNT, REGION = "123456789012", "us-east-1"


class _SendAtTheEnd(list[Any]):
    """A message list whose second complete walk lets another thread send a message just
    before it ends (the first walk is ``delete_message``'s ``any()`` check)."""

    def __init__(self, items: list[Any], send: Callable[[], object]) -> None:
        super().__init__(items)
        self.walks = 0
        self.sender = threading.Thread(target=send, daemon=True)

    def __iter__(self) -> Iterator[Any]:
        self.walks += 1
        walk = self.walks
        yield from list.__iter__(self)
        if walk == 2:
            self.sender.start()
            self.sender.join(0.3)  # done by now, unless it waits for the queue's lock


def _send_during_delete(delete: Callable[[Any, str], None]) -> bool:
    """Whether a message sent while another one is deleted is still in the queue."""
    from moto.sqs.models import sqs_backends

    backend = sqs_backends[ACCOUNT][REGION]
    name = f"deletes-{uuid4().hex[:12]}"
    backend.create_queue(name)
    queue = backend.get_queue(name)
    backend.send_message(name, "old")
    (received,) = backend.receive_message(name, 1, 0, 30)
    walked = _SendAtTheEnd(queue._messages, lambda: backend.send_message(name, "new"))
    queue._messages = walked
    assert received.receipt_handle is not None
    delete(queue, received.receipt_handle)
    walked.sender.join(5)  # it may have waited for the lock until the delete was done
    return "new" in {m.body for m in queue._messages}


def test_a_message_sent_during_a_delete_is_kept() -> None:
    serialize_sqs_deletes()
    from moto.sqs.models import Queue

    assert _send_during_delete(Queue.delete_message)


def test_moto_itself_drops_it() -> None:
    """If this fails, moto fixed the race: the patch can go."""
    assert not _send_during_delete(unpatched_delete)
