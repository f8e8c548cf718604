"""An object of exactly the keys ``_type_`` and ``_data_`` in a payload or a result is
refused (``ledger/reserved_shape.py``, ADR 186): the log's transcoder would read it back as
another type, or fail to read the job at all, failing every claim batched with it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest

from ledger.application import JobLedger
from ledger.command_checks import validate_all
from ledger.commands import ClaimJob, CompleteJob, EnqueueJob, Outcome, validated
from ledger.errors import ReservedShape
from ledger.schedule import check_payload

NOW = datetime(2026, 12, 5, 4, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"_type_": "x", "_data_": 1}, "payload"),
        ({"a": [1, {"_data_": "2020-01-01", "_type_": "datetime_iso"}]}, "payload.a[1]"),
        ([[{"_type_": "uuid_hex", "_data_": "0" * 32}]], "payload[0][0]"),
    ],
)
def test_the_tag_is_refused_naming_where(payload: Any, field: str) -> None:
    with pytest.raises(ReservedShape, match=r"_type_ and _data_") as refused:
        validated(EnqueueJob(customer_id="acme", payload=payload))
    assert refused.value.field == field
    assert refused.value.code == "reserved_shape"


@pytest.mark.parametrize(
    "payload",
    ["_type_", {"_type_": "x"}, {"_type_": "x", "_data_": 1, "more": 2}, {"_data_": 1},
     {"x": "\"_type_\": 1"}],
)  # fmt: skip
def test_other_shapes_pass(payload: Any) -> None:
    assert validated(EnqueueJob(customer_id="acme", payload=payload)).payload == payload


def test_a_result_is_checked_too() -> None:
    report = CompleteJob(job_id=uuid4(), attempt=1, worker_id="w",
                         result={"_type_": "decimal_str", "_data_": "1.5"})  # fmt: skip
    with pytest.raises(ReservedShape):
        validated(report)


def test_one_refused_job_leaves_the_others_and_their_claims() -> None:
    ledger = JobLedger({"PERSISTENCE_MODULE": "eventsourcing.popo"})
    batch = [EnqueueJob(customer_id="a", payload=1),
             EnqueueJob(customer_id="b", payload={"_type_": "x", "_data_": 1}),
             EnqueueJob(customer_id="c", payload=3)]  # fmt: skip
    assert isinstance(validate_all(batch)[1], ReservedShape)
    results = ledger.execute_batch(batch, NOW)
    assert isinstance(results[1], ReservedShape)
    ledger.forget()  # claims read the jobs from the store
    claims = [ClaimJob(job_id=r.job_id, worker_id="w") for r in results if isinstance(r, Outcome)]
    assert all(isinstance(r, Outcome) for r in ledger.execute_batch(claims, NOW))


def test_a_schedules_payload_is_checked_too() -> None:
    check_payload({"ok": {"_type_": "x"}})
    with pytest.raises(ReservedShape, match=r"payload\.a"):
        check_payload({"a": {"_type_": "x", "_data_": 1}})
