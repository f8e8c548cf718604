"""A received message's fate: its visibility extended, or it deleted or released.

A message is a wake-up, not the job: a call on it that fails (its receipt expired, the
transport does not answer within :data:`TRANSPORT_TIMEOUT`) is logged and answered
``False``, never raised; the ledger still holds the truth.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio

from adapters.worker.config import WorkerConfig
from adapters.worker.stats import WorkerStats
from ledger.errors import ReceiptInvalid, TransportError
from ledger.ports.transport import MAX_DELAY_SECONDS, Received, Transport

log = logging.getLogger("ledger.worker")

TRANSPORT_TIMEOUT = 30.0
"""Seconds for one extend/delete/release call."""


class Messages:
    """Extends, deletes and releases the worker's received messages on ``transport``."""

    def __init__(self, transport: Transport, config: WorkerConfig, stats: WorkerStats) -> None:
        self.transport = transport
        self.config = config
        self.stats = stats

    async def extend(self, received: Received) -> None:
        """Keep ``received`` invisible for another visibility timeout."""
        await self._call(
            "extend", received, self.transport.extend, received, self.config.visibility
        )

    async def delete(self, received: Received) -> None:
        """Delete ``received``: its job needs no more wake-up from it."""
        await self._call("delete", received, self.transport.delete, received)

    async def hand_back(self, received: Received, delay: float) -> None:
        """Make ``received`` visible again after ``delay`` seconds (capped by SQS's limit)
        without spending its receive count: the worker releases a message only before a
        handler ran for it (another queue's, draining, the claim refused or unanswered),
        and such receives must never dead-letter a job (docs/adr/0088-unattempted-releases.md)."""
        delay = min(max(0.0, delay), MAX_DELAY_SECONDS)
        if await self._call(
            "release", received, self.transport.release, received, delay=delay, attempted=False
        ):
            self.stats.released += 1

    async def _call(
        self, what: str, received: Received, call: Any, *args: Any, **kwargs: Any
    ) -> bool:
        try:
            with anyio.fail_after(TRANSPORT_TIMEOUT):
                await call(*args, **kwargs)
        except ReceiptInvalid:
            log.debug("%s of message %s: receipt no longer valid", what, received.message_id)
            return False
        except (TransportError, TimeoutError) as error:
            log.warning("%s of message %s failed: %s", what, received.message_id, error)
            return False
        return True
