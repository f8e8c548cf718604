"""The schedule ticker: fires the due ticks of cron schedules (docs/adr/0130-schedules.md).

Not the scheduler of delayed jobs (``adapters/service/scheduler.py``). Every ``interval``
it reads the active schedules whose next tick is due from the ``schedules`` view's
partial index, and fires them through :class:`~ledger.schedule_book.ScheduleBook`: each
tick appends the schedule's ``TickEnqueued`` and its job's ``Enqueued`` in one
transaction, so any number of tickers (one per ``ledger serve``) fire each tick once.
The view only says where to look: the stored schedule decides, so a lagging view costs a
look, never a second job. A failed round logs, backs off and opens a fresh session.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from uuid import UUID

import anyio
from anyio.abc import TaskStatus

from adapters.service.session_worker import SessionWorker
from ledger.application import JobLedger
from ledger.schedule_book import ScheduleBook
from projections.queries.schedules import ScheduleQueries
from projections.store import ViewStore

log = logging.getLogger(__name__)

INTERVAL = 0.5
"""Seconds between rounds: a tick is fired at most about this long after it is due."""
BATCH = 500
"""Most schedules fired per transaction; a full round reads on at once."""
MAX_BACKOFF = 5.0


class ScheduleTicker(SessionWorker):
    """Fires due schedule ticks every ``interval``. Call it as a part of a task group."""

    def __init__(
        self,
        store: ViewStore,
        ledger: JobLedger,
        *,
        clock: Callable[[], datetime],
        actor: str,
        interval: float = INTERVAL,
        batch: int = BATCH,
        reopen: Callable[[], ViewStore] | None = None,
    ) -> None:
        super().__init__(store, "schedule ticker", reopen)
        self._book = ScheduleBook(ledger)
        self._clock = clock
        self._actor = actor
        self._interval = interval
        self._batch = batch
        self._after: tuple[UUID, object] | None = None
        self.enqueued = 0
        self.rounds = 0
        self.failed_rounds = 0
        self.last_round_seconds = 0.0

    async def __call__(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        failures = 0
        while True:
            started = anyio.current_time()
            try:
                full = await self.round() >= self._batch
            except Exception as error:  # the database: back off, a fresh session
                failures += 1
                self.failed_rounds += 1
                delay = min(MAX_BACKOFF, self._interval * 2 ** min(failures - 1, 16))
                log.warning("schedule ticker: round failed: %s; retrying in %.1fs", error, delay)
                await anyio.sleep(delay)
                await self._sync(self._reconnect)
                continue
            failures = 0
            if not full:
                await anyio.sleep(max(0.0, started + self._interval - anyio.current_time()))

    async def round(self) -> int:
        """Read the due schedules (a page) and fire their ticks; how many were read."""
        started = time.perf_counter()
        now = self._clock()
        due = await self._sync(self._due, now)
        self._after = due[-1] if len(due) >= self._batch else None
        if due:
            fired = await self._sync(self._book.fire_due, [sid for sid, _ in due], now,
                                     self._actor)
            self.enqueued += len(fired)
            if fired:
                log.debug("schedule ticker: enqueued %d tick(s)", len(fired))
        self.rounds += 1
        self.last_round_seconds = time.perf_counter() - started
        return len(due)

    def _due(self, now: datetime) -> list[tuple[UUID, object]]:
        return ScheduleQueries(self._store).due(now, self._batch, after=self._after)
