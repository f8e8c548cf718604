"""The ledger's mapper: ``Enqueued`` events encoded without the generic transcoder (issue 19).

eventsourcing's ``Mapper.to_stored_event`` copies the event's ``__dict__``, and its
``JSONTranscoder`` builds a new encoder for every event and calls back into Python for the
timestamp. An ``Enqueued`` event has a fixed shape, so :class:`LedgerMapper` writes it as
a msgspec struct of the same fields in the same order, the datetimes as the transcoder's
``{"_type_": "datetime_iso", "_data_": ...}``, and the payload through the standard
library's encoder with the transcoder's own settings but no fallback: a payload holding
anything but plain JSON (a UUID, a datetime, which the transcoder would tag) makes it take
the generic path. The bytes decode to the same event with the unchanged transcoder (a
test compares them with the generic path's, byte for byte). Every other event, and any
mapper with a cipher or compressor, takes the generic path.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import JSONTranscoder, Mapper, StoredEvent
from eventsourcing.utils import get_topic

from ledger.job import Job

ISO = "datetime_iso"
_PLAIN_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
"""The transcoder's encoder without its ``default``: anything but JSON raises."""


class _Datetime(msgspec.Struct):
    type_: str = msgspec.field(name="_type_")
    data: str = msgspec.field(name="_data_")


class _EnqueuedState(msgspec.Struct):
    """``Job.Enqueued``'s state as the transcoder writes it (field order included)."""

    timestamp: _Datetime
    originator_topic: str
    customer_id: str
    queue: str
    payload: msgspec.Raw
    max_attempts: int
    idempotency_key: str | None
    priority: int
    run_at: _Datetime | None
    traceparent: str | None


_ENCODE = msgspec.json.Encoder().encode
ENQUEUED_TOPIC = get_topic(Job.Enqueued)
_GAP = b"\x00"
"""Stands for the payload in :func:`enqueued_parts`: msgspec writes a NUL in a string as
``\\u0000``, so the only NUL of the encoding is the gap."""


EnqueuedFields = tuple[str, str, int, str | None, int, datetime | None, str | None]
"""``customer_id, queue, max_attempts, idempotency_key, priority, run_at, traceparent``."""


def enqueued_parts(
    timestamp: datetime, originator_topic: str, fields: EnqueuedFields
) -> tuple[bytes, bytes]:
    """An ``Enqueued`` state's bytes before and after its payload: the state of a job with
    these fields is ``before + payload JSON + after`` (``ledger/new_jobs.py``)."""
    customer_id, queue, max_attempts, idempotency_key, priority, run_at, traceparent = fields
    state = _EnqueuedState(
        _Datetime(ISO, timestamp.isoformat()), originator_topic, customer_id, queue,
        msgspec.Raw(_GAP), max_attempts, idempotency_key, priority,
        None if run_at is None else _Datetime(ISO, run_at.isoformat()), traceparent,
    )
    before, after = _ENCODE(state).split(_GAP)
    return before, after


class LedgerMapper(Mapper[UUID]):
    """eventsourcing's mapper, with ``Job.Enqueued`` encoded directly."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        transcoder = self.transcoder
        self._direct = (
            self.cipher is None and self.compressor is None
            and isinstance(transcoder, JSONTranscoder)
            and getattr(transcoder.types.get(datetime), "name", None) == ISO
            and getattr(Job.Enqueued, "class_version", 1) == 1
        )

    @property
    def encodes_directly(self) -> bool:
        """True when ``Job.Enqueued`` is written as :class:`_EnqueuedState` (no cipher, no
        compressor, the transcoder's datetimes): :func:`enqueued_parts` gives its bytes."""
        return self._direct

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        if not self._direct or type(domain_event) is not Job.Enqueued:
            return super().to_stored_event(domain_event)
        event: Any = domain_event
        try:
            payload = _PLAIN_JSON.encode(event.payload).encode()
        except (TypeError, ValueError):  # not plain JSON: the transcoder's way
            return super().to_stored_event(domain_event)
        run_at = event.run_at
        state = _EnqueuedState(
            _Datetime(ISO, event.timestamp.isoformat()), event.originator_topic,
            event.customer_id, event.queue, msgspec.Raw(payload), event.max_attempts,
            event.idempotency_key, event.priority,
            None if run_at is None else _Datetime(ISO, run_at.isoformat()), event.traceparent,
        )
        return StoredEvent(
            originator_id=event.originator_id, originator_version=event.originator_version,
            topic=ENQUEUED_TOPIC, state=_ENCODE(state),
        )
