"""The schedule ticker: fires the due ticks of cron schedules (docs/adr/0130-schedules.md).

Not the scheduler of delayed jobs (``adapters/service/scheduler.py``). Every ``interval``
it reads the active schedules whose next tick is due within ``lead`` seconds from the
``schedules`` view's partial index, and fires them (a tick ahead of its time enqueues its
job scheduled for the tick, which that scheduler releases when due) through
:class:`~ledger.schedule_book.ScheduleBook`: each tick appends the schedule's
``TickEnqueued`` and its job's ``Enqueued`` in one transaction, so any number of
tickers (one per ``ledger serve``) fire each tick once.
One ticker fires at a time (the ``policy:schedules`` lock, as the dispatcher's): that is
not what makes ticks fire once, it only spares the others the wasted, conflicting work;
a ticker whose session dies loses the lock and another takes over.
The view only says where to look: the stored schedule decides, so a lagging view costs a
look, never a second job. A failed round logs, backs off and opens a fresh session.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from uuid import UUID

import anyio
from anyio.abc import TaskStatus

from adapters.service.session_worker import SessionWorker
from ledger.application import JobLedger
from ledger.schedule import Schedule
from ledger.schedule_book import ScheduleBook
from projections.queries.schedules import ScheduleQueries, ScheduleRow
from projections.store import ViewStore

log = logging.getLogger(__name__)

LEAD = 10.0
"""Seconds ahead of its time a tick is fired (``SCHEDULE_LEAD_SECONDS``): its job is
enqueued ``scheduled`` for the tick's time and the scheduler of delayed jobs releases it
then, so a minute with many ticks is enqueued before it begins (ADR 130)."""
INTERVAL = 0.5
"""Seconds between rounds: a tick is fired at most about this long after it is due."""
BATCH = 1000
"""Most due schedules read per round; after a full round the next one reads at once."""
CHUNK = 250
"""Most schedules fired per transaction."""
CONTENDED_SECONDS = 2.0
"""A schedule whose firing conflicted and that the view still lists this long after is
fired from the stored schedule (one read each)."""
MIN_SPLIT = 16
"""A conflicting chunk is split in halves down to this size."""
MAX_BACKOFF = 5.0
LOCK = "policy:schedules"
"""The lock of the ticker that fires (the others stand by)."""


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
        chunk: int = CHUNK,
        reopen: Callable[[], ViewStore] | None = None,
        lead: float = LEAD,
    ) -> None:
        super().__init__(store, "schedule ticker", reopen)
        self._lead = timedelta(seconds=lead)
        self._book = ScheduleBook(ledger, self._lead)
        self._clock = clock
        self._actor = actor
        self._interval = interval
        self._batch = batch
        self._chunk = chunk
        self._contended: dict[UUID, tuple[int | None, float]] = {}
        """Schedules whose firing conflicted: the view's version then, and since when
        (monotonic); an entry goes when the view shows another version or it is fired."""
        self.conflicts = 0
        self.holding = False
        self.enqueued = 0
        self.rounds = 0
        self.failed_rounds = 0
        self.last_round_seconds = 0.0

    async def __call__(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Fire rounds while holding the ticker lock (one ticker fires at a time, as one
        dispatcher sends; the others wait and take over when its session dies)."""
        task_status.started()
        failures = 0
        try:
            while True:
                started = anyio.current_time()
                try:
                    full = await self._locked_round()
                except Exception as error:  # the database: back off, a fresh session
                    failures += 1
                    self.failed_rounds += 1
                    delay = min(MAX_BACKOFF, self._interval * 2 ** min(failures - 1, 16))
                    log.warning("schedule ticker: round failed: %s; retrying in %.1fs",
                                error, delay)
                    await anyio.sleep(delay)
                    if await self._sync(self._reconnect):
                        self.holding = False  # the lock lived on the old session
                    continue
                failures = 0
                if not full:
                    await anyio.sleep(max(0.0, started + self._interval - anyio.current_time()))
        finally:
            with anyio.CancelScope(shield=True):
                if self.holding:
                    with contextlib.suppress(Exception):  # a dead session holds no lock
                        await self._sync(self._store.unlock, LOCK)
                    self.holding = False

    async def _locked_round(self) -> bool:
        """One round if this ticker holds the lock (taking it when free); True when the
        round read a full page."""
        if not self.holding:
            self.holding = await self._sync(self._store.try_lock, LOCK)
            if not self.holding:
                return False
            log.info("schedule ticker %s took over firing ticks", self._actor)
        return await self.round() >= self._batch

    async def round(self) -> int:
        """Read a page of the due schedules from a random pivot and fire their ticks, in
        chunks; how many were read (a full page: the next round reads again at once, from
        a view that by then has caught up with what the other tickers fired)."""
        started = time.perf_counter()
        rows = await self._sync(self._due, self._clock(), uuid.uuid4())
        for start in range(0, len(rows), self._chunk):
            self.enqueued += await self._sync(self._fire, rows[start:start + self._chunk])
        self.rounds += 1
        self.last_round_seconds = time.perf_counter() - started
        return len(rows)

    def _due(self, now: datetime, pivot: UUID) -> list[ScheduleRow]:
        return ScheduleQueries(self._store).due(now + self._lead, self._batch, pivot)

    def _fire(self, rows: list[ScheduleRow]) -> int:
        """Fire a chunk as the view has it (no reads). A row whose firing conflicted is
        skipped while the view still shows it at the same version (another ticker fired
        it; the view has not caught up); still so after ``CONTENDED_SECONDS``, it is fired
        from the stored schedule (the view may not be fed)."""
        now, mono = self._clock(), time.monotonic()
        for sid, (_, since) in list(self._contended.items()):
            if mono - since > 60:  # the view moved on without listing it again
                del self._contended[sid]
        fresh, stored = [], []
        for row in rows:
            seen = self._contended.get(row.schedule_id)
            if seen is not None and seen[0] != row.version:
                del self._contended[row.schedule_id]
                seen = None
            if row.version is None or (seen and mono - seen[1] >= CONTENDED_SECONDS):
                stored.append(row.schedule_id)
            elif seen is None and not self._book.done_here(row.schedule_id, row.version, now):
                fresh.append(row)
        fired = self._book.fire_due(stored, now, self._actor) if stored else []
        for sid in stored:
            self._contended.pop(sid, None)
        return len(fired) + self._fire_rows(fresh, now, mono)

    def _fire_rows(self, rows: list[ScheduleRow], now: datetime, mono: float) -> int:
        """Fire ``rows`` in one transaction; after a conflict, each half again, down to
        ``MIN_SPLIT`` rows, whose schedules are then marked contended."""
        if not rows:
            return 0
        jobs, conflicted = self._book.fire([restored(r) for r in rows], now, self._actor)
        if not conflicted:
            return len(jobs)
        self.conflicts += 1
        if len(rows) <= MIN_SPLIT:
            for row in rows:
                self._contended[row.schedule_id] = (row.version, mono)
            return 0
        half = len(rows) // 2
        return self._fire_rows(rows[:half], now, mono) + self._fire_rows(rows[half:], now, mono)


def restored(row: ScheduleRow) -> Schedule:
    """The schedule as its view row has it (see :meth:`Schedule.restored`)."""
    assert row.version is not None
    spec = {
        "name": row.name, "cron": row.cron, "queue": row.queue, "payload": row.payload,
        "timezone": row.timezone, "missed": row.missed, "customer_id": row.customer_id,
        "priority": row.priority, "max_attempts": row.max_attempts,
    }
    return Schedule.restored(
        row.version, spec, paused=row.state == "paused", next_tick=row.next_tick,
        last_tick=row.last_tick, last_late=row.last_late, at=row.changed_at,
    )
