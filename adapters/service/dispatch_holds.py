"""The dispatcher's holds: a paused queue's sends wait in ``dispatch_holds`` until the
queue is resumed (issue 14, docs/adr/0100-operator-controls.md).

For each page of the log the dispatcher asks :func:`sort_page` which of its messages go
out now and which are held: a message whose queue is paused *now* (the ``Queue``
aggregate as stored, so a pause recorded after the event, while the dispatcher lagged,
holds it too) is held; the page's ``Resumed`` events release their queue's holds, unless
the queue was paused again since (then a later ``Resumed`` releases them). Holds are
written and released rows deleted by :func:`record`, in the transaction that advances
the dispatcher's position; released messages are sent before it, so a crash between
sends them again (harmless: dedup keys, claims decide) and never loses one.

Pure but for the store and the ledger's queue reads, run on the dispatcher's session.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import msgspec

from ledger.application import JobLedger
from ledger.ports.transport import JobMessage, Outgoing
from ledger.queue import queue_id
from projections.events import Event, QueueResumed
from projections.store import ViewStore


class Hold(msgspec.Struct, frozen=True):
    """One held send (a ``dispatch_holds`` row)."""

    job_id: str
    queue_id: str
    queue: str
    customer_id: str
    attempt: int
    priority: int
    dedup_key: str
    position: int

    def outgoing(self) -> Outgoing:
        return Outgoing(JobMessage(
            job_id=UUID(self.job_id), attempt=self.attempt, customer_id=self.customer_id,
            queue=self.queue, dedup_key=self.dedup_key, priority=self.priority,
        ), 0.0)


class Sorted(msgspec.Struct, frozen=True):
    """A page's messages: sent now, held, and the holds its resumes release."""

    send: list[Outgoing]
    hold: list[Hold]
    release: list[Hold]


def paused_now(ledger: JobLedger, names: set[str]) -> set[str]:
    """The queues among ``names`` that are paused as stored now."""
    paused = set()
    for name in names:
        queue = ledger.get_queue(name)
        if queue is not None and queue.paused:
            paused.add(name)
    return paused


def hold_of(out: Outgoing, position: int) -> Hold:
    message = out.message
    return Hold(
        job_id=str(message.job_id), queue_id=str(queue_id(message.queue)),
        queue=message.queue, customer_id=message.customer_id, attempt=message.attempt,
        priority=message.priority, dedup_key=message.dedup_key, position=position,
    )


def releases(store: ViewStore, ledger: JobLedger, events: Sequence[Event]) -> list[Hold]:
    """The holds of the queues the page resumes and that are not paused again now."""
    resumed = list(dict.fromkeys(
        e.originator_id for e in events if isinstance(e.body, QueueResumed)
    ))
    out: list[Hold] = []
    for resumed_id in resumed:
        rows = store.query("dispatch_holds.of_queue", {"queue_id": str(UUID(resumed_id))})
        holds = [msgspec.convert(row, Hold) for row in rows]
        if holds and not paused_now(ledger, {holds[0].queue}):
            out.extend(holds)
    return out


def sort_page(
    store: ViewStore, ledger: JobLedger, events: Sequence[Event], outgoing: list[Outgoing]
) -> Sorted:
    """Which of the page's messages go out now, which wait, which holds go out too."""
    position = events[-1].position if events else 0
    paused = paused_now(ledger, {out.message.queue for out in outgoing})
    send = [out for out in outgoing if out.message.queue not in paused]
    hold = [hold_of(out, position) for out in outgoing if out.message.queue in paused]
    return Sorted(send, hold, releases(store, ledger, events))


def record(store: ViewStore, page: Sorted) -> None:
    """Write the page's holds and delete the released ones (inside the transaction that
    advances the dispatcher's position)."""
    for hold in page.hold:
        store.query("dispatch_holds.hold", msgspec.to_builtins(hold))
    for hold in page.release:
        params: dict[str, Any] = {"job_id": hold.job_id, "dedup_key": hold.dedup_key}
        store.query("dispatch_holds.release", params)
