"""The worker's claims in one round trip on the local queue (ADR 155).

When the transport is the local queue and the ledger port can (``claim_batch``: in
process on PostgreSQL, or an API with ``POST /workers/claims``), the worker asks for as
many jobs as it has free slots in one call: the ledger receives the messages, appends
their ``Claimed`` events and settles the refused ones in one transaction, and answers
the claimed jobs with their receipts. A port that cannot answers
:class:`BatchClaimsUnsupported` once, and the worker goes back to receive-then-claim.
"""

from __future__ import annotations

import logging

import anyio

from adapters.local_queue.claims import ClaimedMessage, ClaimRequest, received_of
from adapters.local_queue.queue import LocalQueue
from adapters.worker.config import WorkerConfig
from adapters.worker.port import (
    BatchClaimsUnsupported,
    LedgerPort,
    LedgerUnavailable,
    WorkerAccessDenied,
)
from ledger.errors import LedgerError, MalformedMessage
from ledger.ports.transport import Received, Transport

log = logging.getLogger("ledger.worker")

RETRY_PAUSE = 1.0
"""Seconds before claiming again after the ledger did not answer."""
WAKE_GAP = 0.02
"""The least time between an empty claim and the next one when a wake-up, not the poll,
asks for it (ADR 210): the log's ``NOTIFY`` follows every append on the server, the
other queues' and the heartbeats' too, so an idle worker on a busy server claims at
most 50 times a second instead of once per notification. A worker idle for longer than
this claims as soon as it is woken."""


class BatchClaimer:
    """Claims up to N jobs at once through ``port.claim_batch``."""

    def __init__(self, port: LedgerPort, transport: LocalQueue, config: WorkerConfig) -> None:
        self.port = port
        self.transport = transport
        self.config = config
        self.enabled = True
        self.fatal: LedgerError | None = None
        self._empty_at: float | None = None
        """When the last claim came back empty (``None`` if it did not)."""

    @classmethod
    def for_worker(
        cls, transport: Transport, port: LedgerPort, config: WorkerConfig
    ) -> BatchClaimer | None:
        """A claimer when ``transport`` is the local queue and ``port`` claims in batches."""
        if isinstance(transport, LocalQueue) and getattr(port, "batch_claims", False):
            return cls(port, transport, config)
        return None

    def request(self, limit: int) -> ClaimRequest:
        """A claim of up to ``limit`` jobs for this worker."""
        queues = self.config.queues
        return ClaimRequest(
            worker_id=self.config.worker_id, limit=limit, visibility=self.config.visibility,
            queues=None if queues is None else sorted(queues),
            queue_name=self.transport.name, max_receives=self.transport.max_receives,
        )

    async def claim(
        self, limit: int, draining: bool
    ) -> tuple[list[tuple[Received, ClaimedMessage]], float]:
        """Up to ``limit`` claimed jobs, and how long to pause before the next call."""
        self._empty_at = None  # a failed claim pauses as long as it says
        if draining:
            return [], 0.0
        request = self.request(limit)
        try:
            claimed: list[ClaimedMessage] = await self.port.claim_batch(request)  # type: ignore[attr-defined]
        except BatchClaimsUnsupported as error:
            log.info("claims in one round trip unavailable (%s): receive, then claim", error)
            self.enabled = False
            return [], 0.0
        except WorkerAccessDenied as error:
            log.error("the ledger refused this worker: %s", error)
            self.fatal = error
            return [], 0.0
        except LedgerError as error:
            retry = error.retry_after if isinstance(error, LedgerUnavailable) else None
            log.warning("claim failed: %s (retrying)", error)
            return [], retry if retry is not None else RETRY_PAUSE
        jobs: list[tuple[Received, ClaimedMessage]] = []
        for job in claimed:
            try:
                jobs.append((received_of(job), job))
            except MalformedMessage as error:  # the ledger decoded it: not expected
                log.warning("claimed job %s: %s", job.job_id, error)
        self._empty_at = None if jobs else anyio.current_time()
        return jobs, 0.0 if jobs else self.transport.poll_interval

    async def pause(self, seconds: float) -> None:
        """The receive loop's pause before the next claim. After an empty claim: until a
        send wakes the queue (another process's too, on PostgreSQL: ADR 210) or
        ``seconds`` pass, and at least :data:`WAKE_GAP` after that claim."""
        empty_at = self._empty_at
        if empty_at is None:
            await anyio.sleep(seconds)
            return
        await self.transport.wait_for_send(seconds)
        await anyio.sleep(max(0.0, empty_at + WAKE_GAP - anyio.current_time()))
