"""The transport on AWS SQS, over aiobotocore.

Configured by ``SQS_QUEUE_URL`` and ``SQS_DLQ_URL`` (when unset, the dead-letter queue is
found from the queue's RedrivePolicy) and the standard AWS variables: ``AWS_REGION`` or
``AWS_DEFAULT_REGION``, ``AWS_ENDPOINT_URL_SQS`` for a local endpoint, and the usual
credential chain. The dead-letter queue itself is SQS's: the queue's RedrivePolicy
``maxReceiveCount`` moves a message there.

Every call runs under ``anyio.fail_after``; botocore's and aiohttp's errors become the
ledger's :class:`~ledger.errors.TransportError` family in one place (:meth:`_guard`).

Two things SQS does not do are done here (docs/adr/0020-transport-port-local-queue-and-sqs.md):

- **Delays beyond 15 minutes.** The message is sent with SQS's maximum delay and a
  ``not_before`` attribute; a receiver that gets it early sends a fresh copy with the
  remaining delay (up to 15 minutes again) and deletes the early one, so the hops never
  count against the receive count.
- **Redrive without StartMessageMoveTask** (moto does not implement it): dead letters are
  received from the dead-letter queue, sent to the queue again, then deleted.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

import aiohttp
import anyio
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession, get_session
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    PartialCredentialsError,
)

from ledger.config import Settings
from ledger.errors import (
    BatchFailure,
    BatchSendFailed,
    DeadLetterQueueNotConfigured,
    InvalidTransportRequest,
    MalformedMessage,
    QueueNotFound,
    ReceiptInvalid,
    TransportAccessDenied,
    TransportError,
    TransportRequestFailed,
    TransportThrottled,
    TransportTimeout,
    TransportUnavailable,
)
from ledger.transport import (
    ATTR_ATTEMPT,
    BATCH_SIZE,
    MAX_VISIBILITY_SECONDS,
    MAX_WAIT_SECONDS,
    DeadLetter,
    JobMessage,
    Outgoing,
    Received,
    check_delay,
    check_max_messages,
    check_visibility,
    check_wait,
    decode_message,
    encode_message,
    outgoing,
)

if TYPE_CHECKING:
    from types_aiobotocore_sqs.client import SQSClient
    from types_aiobotocore_sqs.literals import MessageSystemAttributeNameType
    from types_aiobotocore_sqs.type_defs import (
        MessageAttributeValueTypeDef,
        MessageTypeDef,
        SendMessageBatchRequestEntryTypeDef,
    )

log = logging.getLogger(__name__)

SQS_MAX_DELAY_SECONDS: Final = 900
"""SQS's own maximum DelaySeconds (15 minutes)."""
ATTR_NOT_BEFORE: Final = "not_before"
"""Epoch seconds before which a long-delayed message must not be handed to a worker."""
DEAD_LETTER_HOLD_SECONDS: Final = 60
"""How long dead letters stay hidden while one read or redrive scans the DLQ."""
SYSTEM_ATTRIBUTES: Final[list[MessageSystemAttributeNameType]] = [
    "ApproximateReceiveCount", "SentTimestamp",
]
DEFAULT_REGION: Final = "us-east-1"

_RECEIPT_CODES: Final = frozenset({
    "ReceiptHandleIsInvalid", "MessageNotInflight", "AWS.SimpleQueueService.MessageNotInflight",
})
_NOT_FOUND_CODES: Final = frozenset({
    "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "NonExistentQueue",
})
_ACCESS_CODES: Final = frozenset({
    "AccessDenied", "AccessDeniedException", "InvalidClientTokenId", "SignatureDoesNotMatch",
    "UnrecognizedClientException", "InvalidSecurity", "ExpiredToken", "KMS.AccessDeniedException",
})
_THROTTLE_CODES: Final = frozenset({
    "RequestThrottled", "ThrottlingException", "OverLimit", "KMS.ThrottlingException",
})


@dataclass(frozen=True, slots=True)
class SqsConfig:
    """Where the queues are and how long to wait for them."""

    queue_url: str
    dlq_url: str | None = None
    region: str = DEFAULT_REGION
    endpoint_url: str | None = None
    call_timeout: float = 10.0
    """Seconds for one call (a long poll gets its wait time on top)."""
    connect_timeout: float = 5.0
    max_attempts: int = 3
    """botocore's attempts per call (standard retry mode), all within ``call_timeout``."""
    max_native_delay: int = SQS_MAX_DELAY_SECONDS
    """Longest DelaySeconds sent to SQS; longer delays hop (lowered only by tests)."""
    dead_letter_wait: int = 1
    """Long-poll seconds when reading the DLQ (short polls on SQS may miss messages)."""

    @classmethod
    def from_settings(cls, settings: Settings, env: Mapping[str, str]) -> SqsConfig:
        """The configuration from ``SQS_*`` settings and the standard AWS variables."""
        if settings.sqs_queue_url is None:
            raise TransportRequestFailed("SQS_QUEUE_URL is not set")
        region = (
            env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
            or region_from_url(settings.sqs_queue_url) or DEFAULT_REGION
        )
        endpoint = env.get("AWS_ENDPOINT_URL_SQS") or env.get("AWS_ENDPOINT_URL") or None
        return cls(
            queue_url=settings.sqs_queue_url, dlq_url=settings.sqs_dlq_url, region=region,
            endpoint_url=endpoint,
        )


def region_from_url(queue_url: str) -> str | None:
    """``eu-west-1`` from ``https://sqs.eu-west-1.amazonaws.com/123/q``, else ``None``."""
    host = urlsplit(queue_url).hostname or ""
    parts = host.split(".")
    if len(parts) >= 4 and parts[0] == "sqs" and parts[-2] == "amazonaws":
        return parts[1]
    return None


class SqsTransport:
    """The transport port on an SQS queue and its dead-letter queue."""

    def __init__(
        self,
        config: SqsConfig,
        *,
        session: AioSession | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.clock = clock
        self._session = session or get_session()
        self._stack: AsyncExitStack | None = None
        self._client: SQSClient | None = None
        self._dlq_url = config.dlq_url
        self._connecting: anyio.Lock | None = None
        self._closed = False

    async def __aenter__(self) -> SqsTransport:
        await self._sqs()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- sending ----------------------------------------------------------------------------

    async def send(self, message: JobMessage, *, delay: float = 0.0) -> str:
        delay = check_delay(delay)
        native, attributes = self._delivery(message, delay)
        sqs = await self._sqs()
        with self._guard("SendMessage"):
            answer = await sqs.send_message(
                QueueUrl=self.config.queue_url, MessageBody=encode_message(message),
                DelaySeconds=native, MessageAttributes=attributes,
            )
        return answer["MessageId"]

    async def send_batch(self, entries: Sequence[JobMessage | Outgoing]) -> list[str]:
        items = outgoing(entries)
        sent: list[str | None] = [None] * len(items)
        failures: list[BatchFailure] = []
        sqs = await self._sqs()
        for start in range(0, len(items), BATCH_SIZE):
            request: list[SendMessageBatchRequestEntryTypeDef] = []
            for index, item in enumerate(items[start:start + BATCH_SIZE], start):
                try:
                    check_delay(item.delay)
                except InvalidTransportRequest as error:
                    failures.append(BatchFailure(index, error.code, error.message))
                    continue
                native, attributes = self._delivery(item.message, item.delay)
                request.append({
                    "Id": str(index), "MessageBody": encode_message(item.message),
                    "DelaySeconds": native, "MessageAttributes": attributes,
                })
            if request:
                failures.extend(await self._send_entries(sqs, request, sent))
        if failures:
            raise BatchSendFailed(sorted(failures), sent)
        return [message_id for message_id in sent if message_id is not None]

    async def _send_entries(
        self,
        sqs: SQSClient,
        request: list[SendMessageBatchRequestEntryTypeDef],
        sent: list[str | None],
        queue_url: str | None = None,
    ) -> list[BatchFailure]:
        """One SendMessageBatch call; fills ``sent`` by entry id and returns the failures."""
        try:
            with self._guard("SendMessageBatch"):
                answer = await sqs.send_message_batch(
                    QueueUrl=queue_url or self.config.queue_url, Entries=request
                )
        except TransportError as error:
            return [BatchFailure(int(e["Id"]), error.code, error.message) for e in request]
        failures = [
            BatchFailure(int(f["Id"]), f["Code"], f.get("Message", ""))
            for f in answer.get("Failed", [])
        ]
        for success in answer.get("Successful", []):
            sent[int(success["Id"])] = success["MessageId"]
        answered = {f.entry for f in failures} | {int(s["Id"]) for s in answer["Successful"]}
        failures.extend(
            BatchFailure(int(e["Id"]), "no_answer", "SQS did not report on this entry")
            for e in request if int(e["Id"]) not in answered
        )
        return failures

    def _delivery(
        self, message: JobMessage, delay: float
    ) -> tuple[int, dict[str, MessageAttributeValueTypeDef]]:
        """DelaySeconds and attributes for ``message``: a long delay hops via not_before."""
        attributes = _attributes(message.attributes)
        native = math.ceil(delay)
        if native > self.config.max_native_delay:
            attributes[ATTR_NOT_BEFORE] = _number(self.clock() + delay)
            native = self.config.max_native_delay
        return native, attributes

    # -- receiving -----------------------------------------------------------------------------

    async def receive(
        self,
        *,
        max_messages: int = 1,
        wait_seconds: float = 0.0,
        visibility_timeout: float | None = None,
    ) -> list[Received]:
        check_max_messages(max_messages)
        deadline = anyio.current_time() + check_wait(wait_seconds)
        timeout = None if visibility_timeout is None else check_visibility(visibility_timeout)
        while True:
            remaining = max(0.0, deadline - anyio.current_time())
            raw = await self._receive(
                self.config.queue_url, max_messages, math.ceil(remaining), timeout
            )
            received = [r for r in [await self._accept(m) for m in raw] if r is not None]
            if received or anyio.current_time() >= deadline:
                return received

    async def _accept(self, raw: MessageTypeDef) -> Received | None:
        """The message as received, or ``None`` when it is not due or not a job message."""
        attributes = _attribute_values(raw)
        not_before = attributes.pop(ATTR_NOT_BEFORE, None)
        try:
            message = decode_message(raw.get("Body", ""), attributes)
            due = float(not_before) if not_before is not None else None
        except (MalformedMessage, ValueError) as error:
            # Left invisible: after maxReceiveCount receives SQS moves it to the DLQ.
            log.warning("SQS: skipping message %s: %s", raw.get("MessageId"), error)
            return None
        if due is not None and due > self.clock():
            await self._hop(raw, message, due)
            return None
        return Received(
            message=message,
            message_id=raw["MessageId"],
            receipt=raw["ReceiptHandle"],
            receive_count=_receive_count(raw),
            sent_at=_sent_at(raw),
            attributes=attributes,
        )

    async def _hop(self, raw: MessageTypeDef, message: JobMessage, due: float) -> None:
        """Send a fresh copy of an early long-delayed message, then delete this one."""
        remaining = max(0.0, due - self.clock())
        attributes = _attributes(message.attributes)
        attributes[ATTR_NOT_BEFORE] = _number(due)
        sqs = await self._sqs()
        with self._guard("SendMessage"):
            await sqs.send_message(
                QueueUrl=self.config.queue_url, MessageBody=raw.get("Body", ""),
                DelaySeconds=min(math.ceil(remaining), self.config.max_native_delay),
                MessageAttributes=attributes,
            )
        with self._guard("DeleteMessage"):
            await sqs.delete_message(
                QueueUrl=self.config.queue_url, ReceiptHandle=raw["ReceiptHandle"]
            )

    async def extend(self, received: Received, visibility_timeout: float) -> None:
        seconds = math.ceil(check_visibility(visibility_timeout))
        await self._change_visibility(self.config.queue_url, received.receipt, seconds)

    async def delete(self, received: Received) -> None:
        sqs = await self._sqs()
        with self._guard("DeleteMessage"):
            await sqs.delete_message(QueueUrl=self.config.queue_url, ReceiptHandle=received.receipt)

    async def release(self, received: Received, *, delay: float = 0.0) -> None:
        delay = check_delay(delay)
        if delay <= MAX_VISIBILITY_SECONDS:
            await self._change_visibility(self.config.queue_url, received.receipt, math.ceil(delay))
            return
        # Longer than a visibility timeout may last: a delayed copy replaces the message.
        await self.send(received.message, delay=delay)
        await self.delete(received)

    # -- dead letters ------------------------------------------------------------------------------

    async def read_dead_letters(self, *, max_messages: int = 10) -> list[DeadLetter]:
        check_max_messages(max_messages, limit=1000)
        dlq = await self._dead_letter_queue()
        found: dict[str, MessageTypeDef] = {}
        try:
            while len(found) < max_messages:
                wanted = min(BATCH_SIZE, max_messages - len(found))
                raw = await self._receive(
                    dlq, wanted, self.config.dead_letter_wait, DEAD_LETTER_HOLD_SECONDS
                )
                fresh = [m for m in raw if m["MessageId"] not in found]
                if not fresh:
                    break
                found.update((m["MessageId"], m) for m in fresh)
        finally:  # reading is a peek: make them visible again at once
            await self._release_all(dlq, [m["ReceiptHandle"] for m in found.values()])
        letters = [_dead_letter(m) for m in found.values()]
        return sorted(letters, key=lambda d: (d.sent_at, d.message_id))

    async def delete_dead_letter(self, dead_letter: DeadLetter) -> None:
        dlq = await self._dead_letter_queue()
        sqs = await self._sqs()
        with self._guard("DeleteMessage"):
            await sqs.delete_message(QueueUrl=dlq, ReceiptHandle=dead_letter.receipt)

    async def redrive(
        self, message_ids: Collection[str] | None = None, *, max_messages: int = 100
    ) -> list[DeadLetter]:
        check_max_messages(max_messages, limit=1000)
        wanted = None if message_ids is None else set(message_ids)
        dlq = await self._dead_letter_queue()
        sqs = await self._sqs()
        moved: list[DeadLetter] = []
        held: dict[str, str] = {}  # scanned but not moved: message id -> receipt
        try:
            while len(moved) < max_messages and (wanted is None or wanted - {
                d.message_id for d in moved
            }):
                raw = await self._receive(
                    dlq, BATCH_SIZE, self.config.dead_letter_wait, DEAD_LETTER_HOLD_SECONDS
                )
                fresh = [m for m in raw if m["MessageId"] not in held]
                if not fresh:
                    break
                take: list[tuple[MessageTypeDef, DeadLetter]] = []
                for m in fresh:
                    letter = _dead_letter(m)
                    if (
                        letter.message is not None
                        and (wanted is None or letter.message_id in wanted)
                        and len(moved) + len(take) < max_messages
                    ):
                        take.append((m, letter))
                    else:
                        held[m["MessageId"]] = m["ReceiptHandle"]
                moved.extend(await self._move(sqs, dlq, take, held))
        finally:
            await self._release_all(dlq, list(held.values()))
        return moved

    async def _move(
        self,
        sqs: SQSClient,
        dlq: str,
        take: list[tuple[MessageTypeDef, DeadLetter]],
        held: dict[str, str],
    ) -> list[DeadLetter]:
        """Send ``take`` to the queue, then delete what was sent from the DLQ."""
        if not take:
            return []
        request: list[SendMessageBatchRequestEntryTypeDef] = []
        for index, (m, letter) in enumerate(take):
            assert letter.message is not None
            request.append({
                "Id": str(index), "MessageBody": m.get("Body", ""),
                "MessageAttributes": _attributes(letter.message.attributes),
            })
        sent: list[str | None] = [None] * len(take)
        for failure in await self._send_entries(sqs, request, sent):
            m, _ = take[failure.entry]
            log.warning("SQS redrive: %s not moved: %s", m["MessageId"], failure.reason)
            held[m["MessageId"]] = m["ReceiptHandle"]
        moved = []
        for (m, letter), message_id in zip(take, sent, strict=True):
            if message_id is None:
                continue
            with self._guard("DeleteMessage"):
                await sqs.delete_message(QueueUrl=dlq, ReceiptHandle=m["ReceiptHandle"])
            moved.append(letter)
        return moved

    async def _dead_letter_queue(self) -> str:
        """SQS_DLQ_URL, else the target of the queue's RedrivePolicy."""
        if self._dlq_url is not None:
            return self._dlq_url
        sqs = await self._sqs()
        with self._guard("GetQueueAttributes"):
            answer = await sqs.get_queue_attributes(
                QueueUrl=self.config.queue_url, AttributeNames=["RedrivePolicy"]
            )
        policy = answer.get("Attributes", {}).get("RedrivePolicy")
        if not policy:
            raise DeadLetterQueueNotConfigured()
        arn = str(json.loads(policy).get("deadLetterTargetArn", ""))
        parts = arn.split(":")
        if len(parts) != 6:
            raise DeadLetterQueueNotConfigured(f"unexpected deadLetterTargetArn {arn!r}")
        with self._guard("GetQueueUrl"):
            found = await sqs.get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=parts[4])
        self._dlq_url = found["QueueUrl"]
        return self._dlq_url

    # -- plumbing ---------------------------------------------------------------------------------

    async def _receive(
        self, queue_url: str, count: int, wait: int, visibility: float | None
    ) -> list[MessageTypeDef]:
        sqs = await self._sqs()
        with self._guard("ReceiveMessage", self.config.call_timeout + wait):
            if visibility is None:
                answer = await sqs.receive_message(
                    QueueUrl=queue_url, MaxNumberOfMessages=count, WaitTimeSeconds=wait,
                    MessageSystemAttributeNames=SYSTEM_ATTRIBUTES,
                    MessageAttributeNames=["All"],
                )
            else:
                answer = await sqs.receive_message(
                    QueueUrl=queue_url, MaxNumberOfMessages=count, WaitTimeSeconds=wait,
                    VisibilityTimeout=math.ceil(visibility),
                    MessageSystemAttributeNames=SYSTEM_ATTRIBUTES,
                    MessageAttributeNames=["All"],
                )
        return list(answer.get("Messages", []))

    async def _change_visibility(self, queue_url: str, receipt: str, seconds: int) -> None:
        sqs = await self._sqs()
        with self._guard("ChangeMessageVisibility"):
            await sqs.change_message_visibility(
                QueueUrl=queue_url, ReceiptHandle=receipt, VisibilityTimeout=seconds
            )

    async def _release_all(self, queue_url: str, receipts: list[str]) -> None:
        """Make messages visible again (best effort: they reappear on their own anyway)."""
        if not receipts or self._client is None:
            return
        with anyio.CancelScope(shield=True):
            for start in range(0, len(receipts), BATCH_SIZE):
                entries = [
                    {"Id": str(i), "ReceiptHandle": r, "VisibilityTimeout": 0}
                    for i, r in enumerate(receipts[start:start + BATCH_SIZE])
                ]
                try:
                    with self._guard("ChangeMessageVisibilityBatch"):
                        await self._client.change_message_visibility_batch(
                            QueueUrl=queue_url, Entries=entries  # type: ignore[arg-type]
                        )
                except TransportError as error:
                    log.warning("SQS: could not release %d messages: %s", len(entries), error)

    async def _sqs(self) -> SQSClient:
        client = self._client
        if client is not None:
            return client
        if self._closed:
            raise TransportUnavailable("the SQS transport is closed")
        if self._connecting is None:
            self._connecting = anyio.Lock()
        async with self._connecting:
            return self._client or await self._connect()

    async def _connect(self) -> SQSClient:
        stack = AsyncExitStack()
        config = AioConfig(
            connect_timeout=self.config.connect_timeout,
            read_timeout=self.config.call_timeout + MAX_WAIT_SECONDS,
            retries={"max_attempts": self.config.max_attempts, "mode": "standard"},
        )
        with self._guard("connect"):
            client = await stack.enter_async_context(
                self._session.create_client(
                    "sqs", region_name=self.config.region,
                    endpoint_url=self.config.endpoint_url, config=config,
                )
            )
        self._client, self._stack = client, stack
        return client

    async def aclose(self) -> None:
        self._closed = True
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                await stack.aclose()

    @contextlib.contextmanager
    def _guard(self, operation: str, timeout: float | None = None) -> Iterator[None]:
        """Run one SQS call with a deadline; translate every driver error, here only."""
        seconds = self.config.call_timeout if timeout is None else timeout
        try:
            with anyio.fail_after(seconds):
                yield
        except TimeoutError as error:
            raise TransportTimeout(f"SQS {operation}: no answer within {seconds:g}s") from error
        except ClientError as error:
            raise _client_error(operation, error) from error
        except (NoCredentialsError, PartialCredentialsError) as error:
            raise TransportAccessDenied(f"SQS {operation}: {error}") from error
        except (BotoCoreError, aiohttp.ClientError, OSError) as error:
            raise TransportUnavailable(f"SQS {operation}: {error}") from error


def _client_error(operation: str, error: ClientError) -> TransportError:
    details = error.response.get("Error", {})
    code = str(details.get("Code", ""))
    text = f"SQS {operation}: {code}: {details.get('Message', '')}".rstrip(": ")
    if code in _RECEIPT_CODES:
        return ReceiptInvalid(text)
    if code in _NOT_FOUND_CODES:
        return QueueNotFound(text)
    if code in _ACCESS_CODES:
        return TransportAccessDenied(text)
    if code in _THROTTLE_CODES:
        return TransportThrottled(text)
    if code in {"InvalidParameterValue", "InvalidAttributeValue", "ValidationError"}:
        return InvalidTransportRequest(text)
    return TransportRequestFailed(text)


def _attributes(values: Mapping[str, str]) -> dict[str, MessageAttributeValueTypeDef]:
    types = {ATTR_ATTEMPT: "Number", ATTR_NOT_BEFORE: "Number"}
    return {
        name: {"DataType": types.get(name, "String"), "StringValue": value}
        for name, value in values.items()
    }


def _number(value: float) -> MessageAttributeValueTypeDef:
    return {"DataType": "Number", "StringValue": f"{value:.3f}"}


def _attribute_values(raw: MessageTypeDef) -> dict[str, str]:
    return {
        name: value.get("StringValue", "")
        for name, value in raw.get("MessageAttributes", {}).items()
    }


def _receive_count(raw: MessageTypeDef) -> int:
    return int(raw.get("Attributes", {}).get("ApproximateReceiveCount", "1"))


def _sent_at(raw: MessageTypeDef) -> datetime:
    millis = int(raw.get("Attributes", {}).get("SentTimestamp", "0"))
    return datetime.fromtimestamp(millis / 1000, UTC)


def _dead_letter(raw: MessageTypeDef) -> DeadLetter:
    attributes = _attribute_values(raw)
    attributes.pop(ATTR_NOT_BEFORE, None)
    body = raw.get("Body", "")
    try:
        message: JobMessage | None = decode_message(body, attributes)
    except MalformedMessage:
        message = None
    return DeadLetter(
        message_id=raw["MessageId"],
        receive_count=_receive_count(raw),
        body=body,
        message=message,
        receipt=raw["ReceiptHandle"],
        sent_at=_sent_at(raw),
        attributes=attributes,
    )
