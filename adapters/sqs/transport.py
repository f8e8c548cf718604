"""The transport port on an SQS queue and its dead-letter queue.

Two things SQS does not do are done here (docs/adr/0020-transport-port-local-queue-and-sqs.md):

- **Delays beyond 15 minutes.** The message is sent with SQS's maximum delay and a
  ``not_before`` attribute; a receiver that gets it early sends a fresh copy with the
  remaining delay (up to 15 minutes again) and deletes the early one, so the hops never
  count against the receive count.
- **Redrive without StartMessageMoveTask** (moto does not implement it): dead letters are
  received from the dead-letter queue, sent to the queue again, then deleted.
- **Logical queues** (docs/adr/0070-one-logical-queue-per-receive.md): a job's message goes
  to its queue's own SQS queue (``SQS_QUEUE_URLS``), else to the default one; a receive
  for some queues polls only theirs. A message of another logical queue that a receive
  meets anyway (on the shared default queue) is put back as a fresh copy, so receives no
  handler attempted never spend its receive count.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING, Final

import anyio
from aiobotocore.session import AioSession

from adapters.sqs import wire
from adapters.sqs.calls import SqsCalls
from adapters.sqs.config import SqsConfig
from ledger.errors import (
    BatchFailure,
    BatchSendFailed,
    DeadLetterQueueNotConfigured,
    InvalidTransportRequest,
)
from ledger.ports.transport import (
    BATCH_SIZE,
    MAX_VISIBILITY_SECONDS,
    DeadLetter,
    JobMessage,
    Outgoing,
    Received,
    check_delay,
    check_max_messages,
    check_visibility,
    check_wait,
    encode_message,
    outgoing,
)

if TYPE_CHECKING:
    from types_aiobotocore_sqs.type_defs import (
        MessageTypeDef,
        SendMessageBatchRequestEntryTypeDef,
    )

log = logging.getLogger(__name__)

DEAD_LETTER_HOLD_SECONDS: Final = 60
"""How long dead letters stay hidden while one read or redrive scans the DLQ."""


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
        self.calls = SqsCalls(config, session)
        self._dlq_url = config.dlq_url
        self._max_receives: int | None = None
        self._turn = 0

    async def __aenter__(self) -> SqsTransport:
        await self.calls.client()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.calls.aclose()

    # -- sending ----------------------------------------------------------------------------

    async def send(self, message: JobMessage, *, delay: float = 0.0) -> str:
        native, not_before = self._delay(check_delay(delay))
        return await self.calls.send(
            self._home(message), encode_message(message), native,
            wire.attributes_for(message, not_before),
        )

    async def send_batch(self, entries: Sequence[JobMessage | Outgoing]) -> list[str]:
        items = outgoing(entries)
        sent: list[str | None] = [None] * len(items)
        failures: list[BatchFailure] = []
        by_url: dict[str, list[SendMessageBatchRequestEntryTypeDef]] = {}
        for index, item in enumerate(items):
            try:
                native, not_before = self._delay(check_delay(item.delay))
            except InvalidTransportRequest as error:
                failures.append(BatchFailure(index, error.code, error.message))
                continue
            by_url.setdefault(self._home(item.message), []).append({
                "Id": str(index), "MessageBody": encode_message(item.message),
                "DelaySeconds": native,
                "MessageAttributes": wire.attributes_for(item.message, not_before),
            })
        for url, requests in by_url.items():
            for start in range(0, len(requests), BATCH_SIZE):
                request = requests[start:start + BATCH_SIZE]
                failures.extend(await self.calls.send_batch(url, request, sent))
        if failures:
            raise BatchSendFailed(sorted(failures), sent)
        return [message_id for message_id in sent if message_id is not None]

    def _delay(self, delay: float) -> tuple[int, float | None]:
        """DelaySeconds for SQS and, for a delay SQS cannot hold, the ``not_before``."""
        native = math.ceil(delay)
        if native > self.config.max_native_delay:
            return self.config.max_native_delay, self.clock() + delay
        return native, None

    # -- receiving -----------------------------------------------------------------------------

    async def receive(
        self,
        *,
        max_messages: int = 1,
        wait_seconds: float = 0.0,
        visibility_timeout: float | None = None,
        queues: Collection[str] | None = None,
    ) -> list[Received]:
        """Poll the SQS queues of ``queues`` (every one when ``None``), taking turns with
        long polls of at most a second when there are several."""
        check_max_messages(max_messages)
        deadline = anyio.current_time() + check_wait(wait_seconds)
        timeout = None if visibility_timeout is None else check_visibility(visibility_timeout)
        visibility = None if timeout is None else math.ceil(timeout)
        wanted = None if queues is None else frozenset(queues)
        urls = self.config.urls_for(wanted)
        if self.config.priority_urls:
            return await self._receive_in_order(urls, max_messages, deadline, visibility, wanted)
        polls = 0
        while True:
            remaining = max(0.0, deadline - anyio.current_time())
            wait = math.ceil(remaining if len(urls) == 1 else min(remaining, 1.0))
            url = urls[self._turn % len(urls)]
            self._turn += 1
            polls += 1
            raw = await self.calls.receive(url, max_messages, wait, visibility)
            accepted = [await self._accept(m, url, wanted) for m in raw]
            received = [r for r in accepted if r is not None]
            if received or (polls >= len(urls) and anyio.current_time() >= deadline):
                return received

    async def _receive_in_order(
        self, urls: list[str], max_messages: int, deadline: float, visibility: int | None,
        wanted: frozenset[str] | None,
    ) -> list[Received]:
        """With priority bands: each pass polls the queues highest band first, without
        waiting, filling the receive from the next band down; only an empty pass waits,
        on the last queue, at most a second."""
        while True:
            received: list[Received] = []
            for index, url in enumerate(urls):
                remaining = max(0.0, deadline - anyio.current_time())
                last = index == len(urls) - 1
                wait = math.ceil(min(remaining, 1.0)) if last and not received else 0
                raw = await self.calls.receive(
                    url, max_messages - len(received), wait, visibility
                )
                accepted = [await self._accept(m, url, wanted) for m in raw]
                received.extend(r for r in accepted if r is not None)
                if len(received) >= max_messages:
                    break
            if received or anyio.current_time() >= deadline:
                return received

    async def _accept(
        self, raw: MessageTypeDef, url: str, wanted: frozenset[str] | None
    ) -> Received | None:
        """The message as received, or ``None`` when it is not due, not for this receive
        or not on its queue's SQS queue (then put back as a fresh copy), or not a job
        message (which stays invisible and, after maxReceiveCount receives, goes to the
        DLQ)."""
        decoded = wire.decoded(raw)
        if decoded is None:
            return None
        message, attributes, due = decoded
        if due is not None and due > self.clock():
            await self._hop(raw, url, message, due)
            return None
        if (wanted is not None and message.queue not in wanted) or (
            url != self._home(message)
        ):
            await self._hop(raw, url, message, due)
            return None
        return Received(
            message=message,
            message_id=raw["MessageId"],
            receipt=raw["ReceiptHandle"],
            receive_count=wire.receive_count(raw),
            sent_at=wire.sent_at(raw),
            attributes=attributes,
        )

    async def _hop(
        self, raw: MessageTypeDef, url: str, message: JobMessage, due: float | None
    ) -> None:
        """Send a fresh copy of a message this receive must not hand out (early, or of
        another logical queue) to its queue's SQS queue, then delete this one: its receive
        count starts again, since no handler attempted it."""
        remaining = 0 if due is None else math.ceil(max(0.0, due - self.clock()))
        await self.calls.send(
            self._home(message), raw.get("Body", ""),
            min(remaining, self.config.max_native_delay), wire.attributes_for(message, due),
        )
        await self.calls.delete(url, raw["ReceiptHandle"])

    async def extend(self, received: Received, visibility_timeout: float) -> None:
        seconds = math.ceil(check_visibility(visibility_timeout))
        await self.calls.change_visibility(self._url(received), received.receipt, seconds)

    async def delete(self, received: Received) -> None:
        await self.calls.delete(self._url(received), received.receipt)

    def _home(self, message: JobMessage) -> str:
        """The SQS queue of ``message``: its logical queue's, or its priority band's."""
        return self.config.url_for(message.queue, message.priority)

    def _url(self, received: Received) -> str:
        """Where ``received`` lives: a message is only handed out from its queue's own."""
        return self._home(received.message)

    async def release(
        self, received: Received, *, delay: float = 0.0, attempted: bool = True
    ) -> None:
        """Visible again after ``delay``. SQS cannot un-count a receive: a release no
        handler attempted, like one longer than a visibility timeout may last, sends a
        fresh copy (its receive count starts again) and deletes the received one."""
        delay = check_delay(delay)
        if attempted and delay <= MAX_VISIBILITY_SECONDS:
            await self.calls.change_visibility(
                self._url(received), received.receipt, math.ceil(delay)
            )
            return
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
                raw = await self.calls.receive(
                    dlq, wanted, self.config.dead_letter_wait, DEAD_LETTER_HOLD_SECONDS
                )
                fresh = [m for m in raw if m["MessageId"] not in found]
                if not fresh:
                    break
                found.update((m["MessageId"], m) for m in fresh)
        finally:  # reading is a peek: make them visible again at once
            await self.calls.release_all(dlq, [m["ReceiptHandle"] for m in found.values()])
        maximum = await self._max_receive_count()
        letters = [wire.dead_letter(m, maximum) for m in found.values()]
        return sorted(letters, key=lambda d: (d.sent_at, d.message_id))

    async def delete_dead_letter(self, dead_letter: DeadLetter) -> None:
        await self.calls.delete(await self._dead_letter_queue(), dead_letter.receipt)

    async def redrive(
        self, message_ids: Collection[str] | None = None, *, max_messages: int = 100
    ) -> list[DeadLetter]:
        check_max_messages(max_messages, limit=1000)
        wanted = None if message_ids is None else set(message_ids)
        dlq = await self._dead_letter_queue()
        moved: list[DeadLetter] = []
        held: dict[str, str] = {}  # scanned and not moved: message id -> receipt
        try:
            while len(moved) < max_messages and (
                wanted is None or not wanted <= {d.message_id for d in moved}
            ):
                raw = await self.calls.receive(
                    dlq, BATCH_SIZE, self.config.dead_letter_wait, DEAD_LETTER_HOLD_SECONDS
                )
                fresh = [wire.dead_letter(m) for m in raw if m["MessageId"] not in held]
                if not fresh:
                    break
                take: list[DeadLetter] = []
                for letter in fresh:
                    movable = letter.message is not None and (
                        wanted is None or letter.message_id in wanted
                    )
                    if movable and len(moved) + len(take) < max_messages:
                        take.append(letter)
                    else:
                        held[letter.message_id] = letter.receipt
                moved.extend(await self._move(dlq, take, held))
        finally:
            await self.calls.release_all(dlq, list(held.values()))
        return moved

    async def _move(
        self, dlq: str, take: list[DeadLetter], held: dict[str, str]
    ) -> list[DeadLetter]:
        """Send ``take`` to the queue, then delete from the DLQ what was sent."""
        by_url: dict[str, list[SendMessageBatchRequestEntryTypeDef]] = {}
        for index, letter in enumerate(take):
            if letter.message is not None:
                by_url.setdefault(self._home(letter.message), []).append({
                    "Id": str(index), "MessageBody": letter.body,
                    "MessageAttributes": wire.attributes_for(letter.message),
                })
        if not by_url:
            return []
        sent: list[str | None] = [None] * len(take)
        failures = [
            failure for url, request in by_url.items()
            for failure in await self.calls.send_batch(url, request, sent)
        ]
        for failure in failures:
            letter = take[failure.entry]
            log.warning("SQS redrive: %s not moved: %s", letter.message_id, failure.reason)
            held[letter.message_id] = letter.receipt
        moved = []
        for letter, message_id in zip(take, sent, strict=True):
            if message_id is not None:
                await self.calls.delete(dlq, letter.receipt)
                moved.append(letter)
        return moved

    async def _max_receive_count(self) -> int | None:
        """The default queue's RedrivePolicy ``maxReceiveCount`` (read once), if any."""
        if self._max_receives is None:
            policy = await self.calls.redrive_policy(self.config.queue_url)
            try:
                self._max_receives = int(json.loads(policy or "{}")["maxReceiveCount"])
            except (KeyError, TypeError, ValueError):
                return None
        return self._max_receives

    async def _dead_letter_queue(self) -> str:
        """SQS_DLQ_URL, else the target of the queue's RedrivePolicy."""
        if self._dlq_url is not None:
            return self._dlq_url
        policy = await self.calls.redrive_policy(self.config.queue_url)
        if not policy:
            raise DeadLetterQueueNotConfigured()
        arn = str(json.loads(policy).get("deadLetterTargetArn", ""))
        parts = arn.split(":")
        if len(parts) != 6:
            raise DeadLetterQueueNotConfigured(f"unexpected deadLetterTargetArn {arn!r}")
        self._dlq_url = await self.calls.queue_url(parts[5], parts[4])
        return self._dlq_url
