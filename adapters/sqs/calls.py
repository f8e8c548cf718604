"""Every SQS call the transport makes: one client, a deadline per call, one error translation.

:meth:`SqsCalls.guard` is the only place where botocore's and aiohttp's errors (and our own
deadlines) become the ledger's :class:`~ledger.errors.TransportError` family.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Final

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

from adapters.sqs.config import SqsConfig
from ledger.errors import (
    BatchFailure,
    InvalidTransportRequest,
    QueueNotFound,
    ReceiptInvalid,
    TransportAccessDenied,
    TransportError,
    TransportRequestFailed,
    TransportThrottled,
    TransportTimeout,
    TransportUnavailable,
)
from ledger.ports.transport import BATCH_SIZE, MAX_WAIT_SECONDS

if TYPE_CHECKING:
    from types_aiobotocore_sqs.client import SQSClient
    from types_aiobotocore_sqs.literals import MessageSystemAttributeNameType
    from types_aiobotocore_sqs.type_defs import (
        ChangeMessageVisibilityBatchRequestEntryTypeDef,
        MessageAttributeValueTypeDef,
        MessageTypeDef,
        SendMessageBatchRequestEntryTypeDef,
    )

log = logging.getLogger(__name__)

SYSTEM_ATTRIBUTES: Final[list[MessageSystemAttributeNameType]] = [
    "ApproximateReceiveCount", "SentTimestamp",
]
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
_INVALID_CODES: Final = frozenset({
    "InvalidParameterValue", "InvalidAttributeValue", "ValidationError",
})


class SqsCalls:
    """One aiobotocore SQS client, opened on first use, and the calls made with it."""

    def __init__(self, config: SqsConfig, session: AioSession | None = None) -> None:
        self.config = config
        self._session = session or get_session()
        self._stack: AsyncExitStack | None = None
        self._client: SQSClient | None = None
        self._connecting: anyio.Lock | None = None
        self._closed = False

    async def send(
        self,
        queue_url: str,
        body: str,
        delay: int,
        attributes: dict[str, MessageAttributeValueTypeDef],
    ) -> str:
        sqs = await self.client()
        with self.guard("SendMessage"):
            answer = await sqs.send_message(
                QueueUrl=queue_url, MessageBody=body, DelaySeconds=delay,
                MessageAttributes=attributes,
            )
        return answer["MessageId"]

    async def send_batch(
        self,
        queue_url: str,
        request: list[SendMessageBatchRequestEntryTypeDef],
        sent: list[str | None],
    ) -> list[BatchFailure]:
        """One SendMessageBatch call (entry ids are positions in ``sent``): fills ``sent``
        and returns every entry that was not sent, whatever the reason."""
        sqs = await self.client()
        try:
            with self.guard("SendMessageBatch"):
                answer = await sqs.send_message_batch(QueueUrl=queue_url, Entries=request)
        except TransportError as error:
            return [BatchFailure(int(e["Id"]), error.code, error.message) for e in request]
        failures = [
            BatchFailure(int(f["Id"]), f["Code"], f.get("Message", ""))
            for f in answer.get("Failed", [])
        ]
        for success in answer.get("Successful", []):
            sent[int(success["Id"])] = success["MessageId"]
        answered = {f.entry for f in failures} | {
            int(s["Id"]) for s in answer.get("Successful", [])
        }
        failures.extend(
            BatchFailure(int(e["Id"]), "no_answer", "SQS did not report on this entry")
            for e in request if int(e["Id"]) not in answered
        )
        return failures

    async def receive(
        self, queue_url: str, count: int, wait: int, visibility: int | None
    ) -> list[MessageTypeDef]:
        sqs = await self.client()
        with self.guard("ReceiveMessage", self.config.call_timeout + wait):
            if visibility is None:
                answer = await sqs.receive_message(
                    QueueUrl=queue_url, MaxNumberOfMessages=count, WaitTimeSeconds=wait,
                    MessageSystemAttributeNames=SYSTEM_ATTRIBUTES,
                    MessageAttributeNames=["All"],
                )
            else:
                answer = await sqs.receive_message(
                    QueueUrl=queue_url, MaxNumberOfMessages=count, WaitTimeSeconds=wait,
                    VisibilityTimeout=visibility,
                    MessageSystemAttributeNames=SYSTEM_ATTRIBUTES,
                    MessageAttributeNames=["All"],
                )
        return list(answer.get("Messages", []))

    async def change_visibility(self, queue_url: str, receipt: str, seconds: int) -> None:
        sqs = await self.client()
        with self.guard("ChangeMessageVisibility"):
            await sqs.change_message_visibility(
                QueueUrl=queue_url, ReceiptHandle=receipt, VisibilityTimeout=seconds
            )

    async def delete(self, queue_url: str, receipt: str) -> None:
        sqs = await self.client()
        with self.guard("DeleteMessage"):
            await sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=receipt)

    async def release_all(self, queue_url: str, receipts: list[str]) -> None:
        """Make messages visible again; best effort (they reappear on their own anyway)."""
        sqs = self._client
        if not receipts or sqs is None:
            return
        with anyio.CancelScope(shield=True):
            for start in range(0, len(receipts), BATCH_SIZE):
                entries: list[ChangeMessageVisibilityBatchRequestEntryTypeDef] = [
                    {"Id": str(i), "ReceiptHandle": r, "VisibilityTimeout": 0}
                    for i, r in enumerate(receipts[start:start + BATCH_SIZE])
                ]
                try:
                    with self.guard("ChangeMessageVisibilityBatch"):
                        await sqs.change_message_visibility_batch(
                            QueueUrl=queue_url, Entries=entries
                        )
                except TransportError as error:
                    log.warning("SQS: could not release %d messages: %s", len(entries), error)

    async def redrive_policy(self, queue_url: str) -> str | None:
        """The queue's RedrivePolicy (JSON text), if it has one."""
        sqs = await self.client()
        with self.guard("GetQueueAttributes"):
            answer = await sqs.get_queue_attributes(
                QueueUrl=queue_url, AttributeNames=["RedrivePolicy"]
            )
        return answer.get("Attributes", {}).get("RedrivePolicy")

    async def queue_url(self, name: str, owner: str) -> str:
        sqs = await self.client()
        with self.guard("GetQueueUrl"):
            found = await sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=owner)
        return found["QueueUrl"]

    # -- the client --------------------------------------------------------------------------

    async def client(self) -> SQSClient:
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
        with self.guard("connect"):
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
    def guard(self, operation: str, timeout: float | None = None) -> Iterator[None]:
        """Run one SQS call with a deadline; translate every driver error, here only."""
        seconds = self.config.call_timeout if timeout is None else timeout
        try:
            with anyio.fail_after(seconds):
                yield
        except TimeoutError as error:
            raise TransportTimeout(f"SQS {operation}: no answer within {seconds:g}s") from error
        except ClientError as error:
            raise client_error(operation, error) from error
        except (NoCredentialsError, PartialCredentialsError) as error:
            raise TransportAccessDenied(f"SQS {operation}: {error}") from error
        except (BotoCoreError, aiohttp.ClientError, OSError) as error:
            raise TransportUnavailable(f"SQS {operation}: {error}") from error


def client_error(operation: str, error: ClientError) -> TransportError:
    """The transport error for an error SQS answered with."""
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
    if code in _INVALID_CODES:
        return InvalidTransportRequest(text)
    return TransportRequestFailed(text)
