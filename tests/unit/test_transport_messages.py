"""Job messages at the transport boundary: one strict decoder, attribute checks, limits."""

from __future__ import annotations

import json
from collections.abc import Callable
from uuid import uuid4

import pytest

from ledger.errors import BatchFailure, BatchSendFailed, InvalidTransportRequest, MalformedMessage
from ledger.ports.transport import (
    MAX_BODY_BYTES,
    JobMessage,
    check_delay,
    check_max_messages,
    check_visibility,
    check_wait,
    decode_message,
    encode_message,
)

JOB_ID = uuid4()
MESSAGE = JobMessage(
    job_id=JOB_ID, attempt=2, customer_id="acme", queue="reports", dedup_key="requeue-7"
)


def body(**changes: object) -> str:
    data = json.loads(encode_message(MESSAGE))
    data.update(changes)
    return json.dumps({k: v for k, v in data.items() if v is not None})


def test_a_message_round_trips_with_its_attributes() -> None:
    assert decode_message(encode_message(MESSAGE), MESSAGE.attributes) == MESSAGE
    assert MESSAGE.attributes == {"job_id": str(JOB_ID), "attempt": "2"}


@pytest.mark.parametrize(
    ("text", "why"),
    [
        (body(extra="field"), "unknown field"),
        (body(attempt="2"), "attempt as a string"),
        (body(attempt=-1), "negative attempt"),
        (body(job_id="not-a-uuid"), "bad job id"),
        (body(customer_id=""), "empty customer"),
        (body(queue="has space"), "bad queue name"),
        (body(dedup_key=None), "missing dedup key"),
        ("[1, 2]", "not an object"),
        ("not json", "not JSON"),
        (body(customer_id="x" * (MAX_BODY_BYTES + 1)), "oversized"),
    ],
)
def test_anything_but_a_job_message_is_malformed(text: str, why: str) -> None:
    with pytest.raises(MalformedMessage):
        decode_message(text)


@pytest.mark.parametrize(
    "attributes",
    [
        {},
        {"job_id": str(uuid4()), "attempt": "2"},
        {"job_id": str(JOB_ID), "attempt": "3"},
    ],
)
def test_attributes_must_match_the_body(attributes: dict[str, str]) -> None:
    with pytest.raises(MalformedMessage):
        decode_message(encode_message(MESSAGE), attributes)


@pytest.mark.parametrize(
    ("check", "good", "bad"),
    [
        (check_delay, [0, 0.5, 900, 20 * 60, 86_400 * 30], [-1, float("nan"), float("inf")]),
        (check_visibility, [0, 1, 43_200], [-0.1, 43_200.5]),
        (check_wait, [0, 0.2, 20], [-1, 20.5]),
    ],
)
def test_time_arguments_are_checked(
    check: Callable[[float], float], good: list[float], bad: list[float]
) -> None:
    for value in good:
        assert check(value) == value
    for value in bad:
        with pytest.raises(InvalidTransportRequest):
            check(value)


def test_max_messages_is_one_to_ten() -> None:
    assert check_max_messages(1) == 1
    assert check_max_messages(10) == 10
    for value in (0, 11):
        with pytest.raises(InvalidTransportRequest):
            check_max_messages(value)


def test_batch_failure_names_each_failed_entry() -> None:
    error = BatchSendFailed(
        [BatchFailure(1, "InvalidParameterValue", "DelaySeconds"), BatchFailure(4, "x", "y")],
        ["a", None, "b", "c", None],
    )
    assert str(error) == (
        "2 of 5 messages were not sent: #1: InvalidParameterValue: DelaySeconds; #4: x: y"
    )
    assert error.code == "batch_send_failed"
    assert str(MalformedMessage()) == "The queue message is not a valid job message."
