"""Claims in one round trip and reports that delete their messages (ADR 155), run on the
batch writer's thread of this process.

:func:`queue_claims_for` answers ``None`` when the ledger's database cannot hold the
claim's transaction with the local queue's rows (SQLite, or a ledger without the
PostgreSQL recorder): callers then fall back to receive-then-claim.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from adapters.local_queue.claims import MAX_CLAIMS, ClaimedMessage, ClaimRequest
from adapters.service.batching import BatchWriter
from ledger.application import JobLedger, Result
from ledger.commands import AnyCommand
from ledger.errors import InvalidCommand

if TYPE_CHECKING:
    from adapters.postgres.claims import PostgresClaims


class QueueClaims:
    """Claims and settling reports of one ledger, through its batch writer."""

    def __init__(
        self, claims: PostgresClaims, writer: BatchWriter, clock: Callable[[], datetime],
        epoch: Callable[[], float] = time.time,
    ) -> None:
        self.claims = claims
        self.writer = writer
        self.clock = clock
        self.epoch = epoch

    async def claim(self, request: ClaimRequest) -> list[ClaimedMessage]:
        """Up to ``request.limit`` jobs claimed (1 to :data:`MAX_CLAIMS`)."""
        if not 1 <= request.limit <= MAX_CLAIMS:
            raise InvalidCommand(f"max must be 1 to {MAX_CLAIMS}, got {request.limit}")
        future = self.writer.call(
            lambda: self.claims.claim(request, self.clock(), self.epoch())
        )
        result: list[ClaimedMessage] = await asyncio.wrap_future(future)
        return result

    async def report(
        self, commands: Sequence[AnyCommand], receipts: Sequence[tuple[int, str] | None],
        queue_name: str,
    ) -> list[Result]:
        """The reports' results; the messages of the answered ones are deleted with them."""
        future = self.writer.call(
            lambda: self.claims.report(commands, receipts, queue_name, self.clock())
        )
        result: list[Result] = await asyncio.wrap_future(future)
        return result


def queue_claims_for(
    ledger: JobLedger, writer: BatchWriter, clock: Callable[[], datetime]
) -> QueueClaims | None:
    """The claims of ``ledger`` if its log is on PostgreSQL (where the local queue's rows
    are), else ``None``."""
    from adapters.postgres.claims import PostgresClaims
    from adapters.postgres.event_recorder import LedgerEventRecorder

    recorder = ledger.recorder
    if not isinstance(recorder, LedgerEventRecorder):
        return None
    return QueueClaims(PostgresClaims(ledger, recorder), writer, clock)
