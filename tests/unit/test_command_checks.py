"""A batch's commands are validated as each alone would be, its shared fields once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from ledger.command_checks import shape_of, validate_all
from ledger.commands import (
    AnyCommand,
    CancelJob,
    CompleteJob,
    EnqueueJob,
    ReleaseJob,
    validated,
)
from ledger.errors import InvalidCommand, InvalidText

J1, J2, J3 = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def alone(command: AnyCommand) -> object:
    try:
        return validated(command)
    except InvalidCommand as error:
        return error


def same_as_alone(commands: list[Any]) -> None:
    for command, got in zip(commands, validate_all(commands), strict=True):
        expected = alone(command)
        assert type(got) is type(expected)
        assert str(got) == str(expected)
        assert isinstance(got, InvalidCommand) or got == expected


@pytest.mark.parametrize("commands", [
    [CancelJob(job_id=j, actor="ops", reason="why", action_id="a1") for j in (J1, J2, J3)],
    [ReleaseJob(job_id=j) for j in (J1, J2, J3)],
    [CancelJob(job_id=J1, actor="ops"), CancelJob(job_id=J2, actor="bad\x00"),
     CancelJob(job_id=J3, actor="ops")],
    [CancelJob(job_id=J1, actor="bad\x00"), CancelJob(job_id=J2, actor="bad\x00")],
    [CancelJob(job_id=J1, actor="ops", reason="x" * 501),
     CancelJob(job_id=J2, actor="ops", reason="x" * 501)],
    [CancelJob(job_id=str(J1), actor="ops"), CancelJob(job_id=J2, actor="ops")],  # type: ignore[arg-type]
    [EnqueueJob(customer_id="c", priority=1), EnqueueJob(customer_id="c", priority=True)],
    [EnqueueJob(customer_id="c", delay_seconds=5), EnqueueJob(customer_id="c", delay_seconds=5)],
    [EnqueueJob(customer_id="c", run_at=NOW), EnqueueJob(customer_id="c", run_at=NOW)],
    [EnqueueJob(customer_id="c", run_at=NOW.replace(tzinfo=None)),
     EnqueueJob(customer_id="c", run_at=NOW.replace(tzinfo=None))],
    [CompleteJob(job_id=J1, attempt=1, worker_id="w", result={"a": "x\x00"}),
     CompleteJob(job_id=J2, attempt=1, worker_id="w", result={"a": "ok"})],
], ids=["bulk cancel", "releases", "one bad text", "bad twice", "long reason twice",
        "job_id as text", "bool is not int", "int delay", "aware time", "naive time",
        "payloads alone"])
def test_each_command_is_checked_as_alone(commands: list[AnyCommand]) -> None:
    same_as_alone(commands)


def test_a_bad_text_is_refused_in_every_command_of_the_shape() -> None:
    checked = validate_all([CancelJob(job_id=j, actor="ops", reason="r\x07") for j in (J1, J2)])
    assert all(isinstance(c, InvalidText) for c in checked)


def test_each_job_keeps_its_own_id() -> None:
    checked = validate_all([CancelJob(job_id=j, actor="ops", action_id="a") for j in (J1, J2)])
    assert [c.job_id for c in checked if isinstance(c, CancelJob)] == [J1, J2]


def test_payloads_and_odd_ids_are_checked_alone() -> None:
    assert shape_of(EnqueueJob(customer_id="c", payload={"a": 1})) is None
    assert shape_of(CancelJob(job_id=str(J1), actor="ops")) is None  # type: ignore[arg-type]
    assert shape_of(CancelJob(job_id=J1, actor="o")) == shape_of(CancelJob(job_id=J2, actor="o"))
