"""The limiter's aggregated decisions, appended to the ledger for the rate-limit view.

:class:`TallyReporter` runs in the app's task group: every ``TALLY_FLUSH_SECONDS`` it
appends the minutes the limiter has finished counting, and on shutdown everything it holds.
A save that fails gives the tallies back to the counter for the next try.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import anyio
import anyio.to_thread
from eventsourcing.persistence import RecordConflictError

from adapters.http.ratelimit import Limiter
from ledger.application import JobLedger
from ledger.tally import RequestTally

log = logging.getLogger(__name__)

TALLY_FLUSH_SECONDS = 15.0


@dataclass
class TallyReporter:
    """Appends the limiter's tallies to the ledger."""

    limiter: Limiter
    ledger: JobLedger
    clock: Callable[[], datetime]

    async def run(self) -> None:
        """Flush every ``TALLY_FLUSH_SECONDS`` (start in the app's task group)."""
        while True:
            await anyio.sleep(TALLY_FLUSH_SECONDS)
            await self.flush()

    async def flush(self, *, everything: bool = False) -> None:
        """Append the limiter's finished minutes (all of them when ``everything``)."""
        counter = self.limiter.tallies
        if counter is None:
            return
        tallies = counter.flush(self.clock(), everything=everything)
        if not tallies:
            return
        try:
            await anyio.to_thread.run_sync(self._save, tallies)
        except Exception as error:
            log.warning("rate-limit tallies not saved (%s); keeping them for the next try", error)
            counter.restore(tallies)

    def _save(self, tallies: list[RequestTally]) -> None:
        try:
            self.ledger.save(*tallies)
        except RecordConflictError:
            # Some were saved by a try that failed after committing: save the others alone.
            for tally in tallies:
                with contextlib.suppress(RecordConflictError):
                    self.ledger.save(tally)
