"""What only the SQS adapter does, against moto's server mode (real HTTP, real botocore)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any
from uuid import uuid4

import anyio
import pytest
from aiobotocore.session import AioSession, get_session

from adapters.service.backend import backend_for
from adapters.service.bootstrap import build_transport
from adapters.service.settings import Settings
from adapters.sqs import SQS_MAX_DELAY_SECONDS, SqsConfig, SqsTransport, region_from_url
from ledger.errors import (
    BatchSendFailed,
    QueueNotFound,
    TransportTimeout,
    TransportUnavailable,
)
from ledger.ports.transport import JobMessage, Outgoing
from tests.support.sqs import REGION, SqsQueues, closed_port, silent_server

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def job(n: int = 0) -> JobMessage:
    return JobMessage(
        job_id=uuid4(), attempt=1, customer_id="acme", queue="default", dedup_key=f"k-{n}"
    )


def config(queues: SqsQueues, **overrides: Any) -> SqsConfig:
    values: dict[str, Any] = {
        "queue_url": queues.queue_url, "dlq_url": queues.dlq_url, "region": REGION,
        "endpoint_url": queues.endpoint, "dead_letter_wait": 0, **overrides,
    }
    return SqsConfig(**values)


class Calls:
    """Records the parameters of every call of one SQS operation, as botocore builds them."""

    def __init__(self, session: AioSession, operation: str) -> None:
        self.params: list[dict[str, Any]] = []
        session.register(f"provide-client-params.sqs.{operation}", self._record)

    def _record(self, params: dict[str, Any], **_: Any) -> None:
        self.params.append(dict(params))


@pytest.fixture
async def raw_sqs(sqs_queues: SqsQueues, anyio_backend: str) -> AsyncIterator[Any]:
    """A plain aiobotocore client on moto, to look behind the adapter's back."""
    async with get_session().create_client(
        "sqs", region_name=REGION, endpoint_url=sqs_queues.endpoint
    ) as client:
        yield client


async def test_batch_of_25_goes_out_in_calls_of_10_10_and_5(sqs_queues: SqsQueues) -> None:
    session = get_session()
    calls = Calls(session, "SendMessageBatch")
    async with SqsTransport(config(sqs_queues), session=session) as transport:
        ids = await transport.send_batch([job(n) for n in range(25)])

    assert len(set(ids)) == 25
    assert [len(p["Entries"]) for p in calls.params] == [10, 10, 5]


async def test_entries_the_server_refuses_are_reported_one_by_one(
    sqs_queues: SqsQueues,
) -> None:
    # Misconfigured on purpose: SQS itself refuses DelaySeconds above 900 per entry.
    async with SqsTransport(config(sqs_queues, max_native_delay=1800)) as transport:
        entries: list[JobMessage | Outgoing] = [job(n) for n in range(5)]
        entries[1] = Outgoing(job(1), delay=1200)
        entries[3] = Outgoing(job(3), delay=1200)

        with pytest.raises(BatchSendFailed) as raised:
            await transport.send_batch(entries)

        assert [(f.entry, f.code) for f in raised.value.failures] == [
            (1, "InvalidParameterValue"), (3, "InvalidParameterValue"),
        ]
        assert [bool(i) for i in raised.value.sent] == [True, False, True, False, True]
        got = await transport.receive(max_messages=10, wait_seconds=1)
        assert sorted(r.message.dedup_key for r in got) == ["k-0", "k-2", "k-4"]


async def test_long_delay_is_sent_as_sqs_maximum_with_a_not_before(sqs_queues: SqsQueues) -> None:
    session = get_session()
    calls = Calls(session, "SendMessage")
    async with SqsTransport(config(sqs_queues), session=session) as transport:
        before = time.time()
        await transport.send(job(), delay=3600)

    (params,) = calls.params
    assert params["DelaySeconds"] == SQS_MAX_DELAY_SECONDS
    not_before = float(params["MessageAttributes"]["not_before"]["StringValue"])
    assert before + 3600 - 0.001 <= not_before <= time.time() + 3600  # sent to the ms


async def test_job_id_and_attempt_travel_as_message_attributes(
    sqs_queues: SqsQueues, raw_sqs: Any
) -> None:
    message = job()
    async with SqsTransport(config(sqs_queues)) as transport:
        await transport.send(message)

    answer = await raw_sqs.receive_message(
        QueueUrl=sqs_queues.queue_url, MessageAttributeNames=["All"], WaitTimeSeconds=1
    )
    (raw,) = answer["Messages"]
    assert raw["MessageAttributes"] == {
        "job_id": {"DataType": "String", "StringValue": str(message.job_id)},
        "attempt": {"DataType": "Number", "StringValue": "1"},
    }


async def test_a_foreign_message_is_skipped_and_ends_in_the_dead_letter_queue(
    sqs_queues: SqsQueues, raw_sqs: Any
) -> None:
    await raw_sqs.send_message(QueueUrl=sqs_queues.queue_url, MessageBody="not a job")
    async with SqsTransport(config(sqs_queues)) as transport:
        for _ in range(sqs_queues.max_receive_count + 1):
            assert await transport.receive(wait_seconds=0, visibility_timeout=0) == []

        (letter,) = await transport.read_dead_letters()
        assert letter.message is None
        assert letter.body == "not a job"
        assert await transport.redrive() == []  # not a job message: left for a person


async def test_body_and_attributes_must_agree(sqs_queues: SqsQueues, raw_sqs: Any) -> None:
    message = job()
    await raw_sqs.send_message(
        QueueUrl=sqs_queues.queue_url,
        MessageBody=f'{{"job_id":"{message.job_id}","attempt":1,"customer_id":"acme",'
        '"queue":"default","dedup_key":"k"}',
        MessageAttributes={"job_id": {"DataType": "String", "StringValue": str(uuid4())},
                           "attempt": {"DataType": "Number", "StringValue": "1"}},
    )
    async with SqsTransport(config(sqs_queues)) as transport:
        assert await transport.receive(wait_seconds=1) == []


async def test_dead_letter_queue_is_found_from_the_redrive_policy(sqs_queues: SqsQueues) -> None:
    message = job()
    async with SqsTransport(config(sqs_queues, dlq_url=None)) as transport:
        await transport.send(message)
        for _ in range(sqs_queues.max_receive_count):
            (received,) = await transport.receive(wait_seconds=1, visibility_timeout=0)
        assert received.receive_count == sqs_queues.max_receive_count
        assert await transport.receive() == []

        assert [d.message for d in await transport.read_dead_letters()] == [message]


async def test_unknown_queue_is_queue_not_found(sqs_queues: SqsQueues) -> None:
    missing = sqs_queues.queue_url.rsplit("/", 1)[0] + "/no-such-queue"
    async with SqsTransport(config(sqs_queues, queue_url=missing)) as transport:
        with pytest.raises(QueueNotFound):
            await transport.send(job())


async def test_unreachable_endpoint_is_transport_unavailable(sqs_queues: SqsQueues) -> None:
    endpoint = closed_port()
    transport = SqsTransport(
        config(sqs_queues, endpoint_url=endpoint, call_timeout=5, max_attempts=1)
    )
    try:
        with pytest.raises(TransportUnavailable):
            await transport.send(job())
    finally:
        await transport.aclose()


async def test_a_silent_endpoint_times_out(sqs_queues: SqsQueues) -> None:
    with silent_server() as endpoint:
        transport = SqsTransport(config(sqs_queues, endpoint_url=endpoint, call_timeout=0.5))
        started = anyio.current_time()
        try:
            with pytest.raises(TransportTimeout):
                await transport.send(job())
        finally:
            await transport.aclose()
    assert anyio.current_time() - started < 3


async def test_build_transport_chooses_sqs_from_the_environment(
    sqs_queues: SqsQueues, tmp_path: Any
) -> None:
    settings = Settings(
        sqs_queue_url=sqs_queues.queue_url, sqs_dlq_url=sqs_queues.dlq_url,
        ledger_data_dir=tmp_path,
    )
    env = {"AWS_REGION": "eu-west-2", "AWS_ENDPOINT_URL_SQS": sqs_queues.endpoint}
    transport = build_transport(settings, backend_for(settings), env)
    try:
        assert isinstance(transport, SqsTransport)
        assert transport.config.region == "eu-west-2"
        assert transport.config.endpoint_url == sqs_queues.endpoint
        assert transport.config.dlq_url == sqs_queues.dlq_url
    finally:
        await transport.aclose()
    assert not (tmp_path / "ledger.sqlite3").exists()  # no local queue was opened


def test_region_comes_from_the_queue_url_when_not_configured() -> None:
    assert region_from_url("https://sqs.eu-west-1.amazonaws.com/123456789012/jobs") == "eu-west-1"
    assert region_from_url("http://127.0.0.1:5000/123456789012/jobs") is None
    queue_url = "https://sqs.ap-south-1.amazonaws.com/1/jobs"
    assert SqsConfig.from_env(queue_url, None, {}).region == "ap-south-1"
    assert SqsConfig.from_env(queue_url, None, {"AWS_DEFAULT_REGION": "us-west-2"}).region == (
        "us-west-2"
    )
    assert SqsConfig.from_env(
        queue_url, None, {"AWS_REGION": "eu-north-1", "AWS_DEFAULT_REGION": "us-west-2"}
    ).region == "eu-north-1"


async def test_a_dead_letter_carries_the_configured_max_receive_count(
    sqs_queues: SqsQueues,
) -> None:
    async with SqsTransport(config(sqs_queues)) as transport:
        await transport.send(JobMessage(
            job_id=uuid4(), attempt=0, customer_id="acme", dedup_key="once",
        ))
        for _ in range(sqs_queues.max_receive_count + 1):
            await transport.receive(wait_seconds=1, visibility_timeout=0)
        await transport.read_dead_letters()  # every read raises SQS's receive count
        (letter,) = await transport.read_dead_letters()
    assert letter.receive_count > sqs_queues.max_receive_count
    assert letter.max_receives == sqs_queues.max_receive_count
