"""``Enqueued`` events encoded directly (``ledger/event_mapper.py``, issue 19) are the bytes
eventsourcing's generic mapper writes, and decode to the same event; anything else takes
the generic path."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import Mapper

from ledger.application import JobLedger
from ledger.event_mapper import LedgerMapper
from ledger.job import Job

NOW = datetime(2026, 12, 5, 1, 2, 3, 456789, tzinfo=UTC)
PAYLOADS: list[Any] = [
    None, 0, -1, 2**80, 1.5, 1e16, float("nan"), float("inf"), True, "", "é\u2028\x7f\"\\",
    "\t\n\r", [], {}, {"a": [1, {"b": None}], "c": "\U0001f600"}, {"_type_": "x", "_data_": 1},
]  # fmt: skip


@pytest.fixture(scope="module")
def mappers() -> tuple[Mapper[UUID], Mapper[UUID]]:
    ledger = JobLedger({"PERSISTENCE_MODULE": "eventsourcing.popo"})
    assert isinstance(ledger.mapper, LedgerMapper)
    generic = Mapper[UUID](transcoder=ledger.mapper.transcoder)
    return ledger.mapper, generic


def enqueued(payload: Any = None, **extra: Any) -> Any:
    job = Job.enqueue(
        job_id=uuid4(), customer_id="acme", queue="emails", payload=payload, max_attempts=3,
        idempotency_key=extra.pop("idempotency_key", None), now=NOW, **extra,
    )
    return job.pending_events[0]


@pytest.mark.parametrize("payload", PAYLOADS, ids=repr)
def test_the_bytes_are_the_generic_mappers(
    mappers: tuple[Mapper[UUID], Mapper[UUID]], payload: Any
) -> None:
    direct, generic = mappers
    event = enqueued(payload)
    assert direct.to_stored_event(event) == generic.to_stored_event(event)


def test_every_field_and_a_time_zone(mappers: tuple[Mapper[UUID], Mapper[UUID]]) -> None:
    direct, generic = mappers
    run_at = (NOW + timedelta(hours=2)).astimezone(timezone(timedelta(hours=5, minutes=30)))
    event = enqueued(
        {"n": 1}, idempotency_key="invoice-42", priority=-5, run_at=run_at,
        traceparent="00-" + "1" * 32 + "-" + "2" * 16 + "-01",
    )
    stored = direct.to_stored_event(event)
    assert stored == generic.to_stored_event(event)
    assert vars(generic.to_domain_event(stored)) == vars(event)


@pytest.mark.parametrize("payload", [{"id": uuid4()}, [NOW], Decimal("1.5")], ids=repr)
def test_a_payload_the_transcoder_tags_takes_the_generic_path(
    mappers: tuple[Mapper[UUID], Mapper[UUID]], payload: Any
) -> None:
    direct, generic = mappers
    event = enqueued(payload)
    stored = direct.to_stored_event(event)
    assert stored == generic.to_stored_event(event)
    assert generic.to_domain_event(stored).payload == payload  # type: ignore[attr-defined]


def test_a_lone_surrogate_fails_as_before(mappers: tuple[Mapper[UUID], Mapper[UUID]]) -> None:
    direct, generic = mappers
    event = enqueued("\ud800")
    with pytest.raises(UnicodeEncodeError):
        generic.to_stored_event(event)
    with pytest.raises(UnicodeEncodeError):
        direct.to_stored_event(event)
