"""Stored events for projection tests: the ledger's own, as the stores hold them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from eventsourcing.domain import Aggregate

from ledger.application import JobLedger
from ledger.policies.retry import RetryPolicy
from projections.events import Event, RawRow, decode_page

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def memory_ledger() -> JobLedger:
    """A ledger on eventsourcing's in-memory recorder, retries without delay."""
    return JobLedger(
        {"PERSISTENCE_MODULE": "eventsourcing.popo"}, retry_policy=RetryPolicy(0, 0),
        draw=lambda: 0.5,
    )


def logged(ledger: JobLedger, after: int = 0) -> list[RawRow]:
    """Every stored event after ``after`` as the stores read them."""
    rows: list[RawRow] = []
    while True:
        page = ledger.recorder.select_notifications(
            start=after + 1, limit=1000, inclusive_of_start=True
        )
        rows.extend(
            (n.id, str(n.originator_id), n.originator_version, n.topic, n.state) for n in page
        )
        if len(page) < 1000:
            return rows
        after = page[-1].id


def decoded(rows: Sequence[RawRow]) -> list[Event]:
    events, error = decode_page(rows)
    assert error is None, error
    return events


def raw(position: int, aggregate_id: str, version: int, topic: str, **state: Any) -> RawRow:
    """A hand-made stored event (``at`` in state becomes the eventsourcing timestamp)."""
    at = state.pop("at", T0 + timedelta(seconds=position))
    body = {"timestamp": {"_type_": "datetime_iso", "_data_": at.isoformat()}, **state}
    return (position, aggregate_id, version, topic, msgspec.json.encode(body))


def save_all(ledger: JobLedger, *aggregates: Aggregate) -> None:
    ledger.save(*aggregates)
