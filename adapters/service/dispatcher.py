"""The dispatcher: sends jobs to the transport, driven from the log with tracking.

Every ``Enqueued``, ``Requeued``, ``Redriven`` and ``Released`` event becomes one job
message, carrying the job's priority; an ``Enqueued`` with a future ``run_at`` and a
``Requeued`` with a future ``not_before`` (a retry's backoff) send nothing: the job is
``scheduled``, and the scheduler's round (:mod:`adapters.service.scheduler`) releases it
when due, whose ``Released`` is sent (ADR 100). The
dispatcher reads the log after its tracked position, sends the page's messages, and only
then advances its position, so a crash after an event and before its send still sends it
after a restart (at least once). A resend is harmless: each message carries a dedup key
naming the event, and a worker's claim of a job that is no longer pending is refused by
the ledger, so the worker just deletes the duplicate.

One dispatcher sends at a time across processes (a named lock on the ledger's database);
another waits and takes over when the first dies. An event the dispatcher cannot read
stops it there (it never skips one).

With the local queue on PostgreSQL the recorder writes most messages in the transaction of
the event that asks for them (the transactional outbox, ADR 151, ``ledger/outbox.py``);
the dispatcher skips the events whose positions the outbox recorded and sends the rest:
events of a queue paused when they were decided (held as below), and events appended by a
process without the outbox (before an upgrade).

A failed round (the database restarting, the transport down) does not end the dispatcher:
it logs, backs off, opens a fresh session (the old one may be dead, and the lock died with
it), retakes the lock and reads its position again, so a page whose position was not
recorded is sent again and no event is skipped. A stop at an unreadable event is retried
the same way (without a new session) and logged as an error each time.
"""

from __future__ import annotations

import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import NamedTuple
from uuid import UUID

import anyio
from anyio.abc import TaskStatus

from adapters.service.dispatch_holds import Sorted, record, sort_page
from adapters.service.session_worker import SessionWorker
from adapters.tracing import dispatched
from ledger.application import JobLedger
from ledger.errors import JobNotFound, LedgerError
from ledger.ports.transport import JobMessage, Outgoing, Transport
from projections.events import (
    Enqueued,
    Event,
    EventNotUnderstood,
    Redriven,
    Released,
    Requeued,
    decode_page,
)
from projections.store import Tracking, ViewStore

log = logging.getLogger(__name__)

DISPATCH = "policy:dispatch"
"""The dispatcher's tracking row and lock name."""
PAGE = 500
MAX_BACKOFF = 5.0
"""Longest wait, in seconds, between failed rounds (doubling from the poll interval)."""
LINGER_SECONDS = 0.025
"""With the outbox (which writes the queue rows itself), how long the dispatcher waits
after a small page that sent nothing before reading the next: pages of a few events each
cost a round per notification while workers append (issue 19, ADR 204). Not after a page
that sent (the next may hold more jobs waiting for their send), and never without the
outbox, where every enqueue waits for the dispatcher's send."""
PERSIST_EVERY = 10_000
"""Events read past the recorded position, in pages that asked for nothing, before the
position is recorded anyway (a restart reads at most this many again)."""


class Page(NamedTuple):
    """A page as :meth:`Dispatcher._prepare` read and sorted it."""

    tracking: Tracking
    events: list[Event]
    error: EventNotUnderstood | None
    queued: set[int]
    holds: Sorted
    outgoing: list[Outgoing]


class DispatchStopped(LedgerError):
    """The dispatcher stopped at an event it cannot read (it never skips one)."""

    code = "dispatch_stopped"


def held(event: Event) -> bool:
    """True when the event leaves its job ``scheduled``: the scheduler releases it."""
    body = event.body
    if isinstance(body, Enqueued):
        return body.run_at is not None and body.run_at.at > event.at
    if isinstance(body, Requeued):
        return body.not_before is not None and body.not_before.at > event.at
    return False


def message_for(
    event: Event, customer_id: str, queue: str, attempt: int, now: datetime, *,
    priority: int = 0,
) -> Outgoing | None:
    """The message an event asks for, with its delay; ``None`` for other events and for
    events that leave the job scheduled (:func:`held`)."""
    body = event.body
    if not isinstance(body, Enqueued | Requeued | Redriven | Released) or held(event):
        return None
    delay = 0.0
    if isinstance(body, Requeued) and body.not_before is not None:
        delay = max(0.0, (body.not_before.at - now).total_seconds())
    message = JobMessage(
        job_id=UUID(event.originator_id),
        attempt=attempt,
        customer_id=customer_id,
        queue=queue,
        dedup_key=f"{event.originator_id}:v{event.originator_version}",
        priority=priority,
    )
    return Outgoing(message, delay)


class Dispatcher(SessionWorker):
    """Sends the messages the log asks for. Call it as a part of a task group."""

    def __init__(
        self,
        store: ViewStore,
        ledger: JobLedger,
        transport: Transport,
        *,
        clock: Callable[[], datetime],
        owner: str,
        page: int = PAGE,
        poll_interval: float = 0.5,
        max_backoff: float = MAX_BACKOFF,
        reopen: Callable[[], ViewStore] | None = None,
        linger: float | None = None,
    ) -> None:
        super().__init__(store, "dispatcher", reopen)
        self._linger = (LINGER_SECONDS if ledger is not None and ledger.outbox is not None
                        else 0.0) if linger is None else linger
        self._max_backoff = max_backoff
        self._ledger = ledger
        self._transport = transport
        self._clock = clock
        self._owner = owner
        self._page = page
        self._poll = poll_interval
        self._jobs: OrderedDict[str, tuple[str, str, int, int]] = OrderedDict()
        self.sent = 0
        self.held = 0
        """Sends held because their queue was paused (sent when it is resumed)."""
        self.holding = False
        self.failed_rounds = 0
        self.reconnects = 0
        self._at: Tracking | None = None
        """The position as this dispatcher last advanced it, while it holds the lock: a
        page needs no read of it (issue 19); dropped after a failed round or advance."""
        self._read_to = 0
        """Where the next page starts: past :attr:`_at` after pages that asked for
        nothing (their position is recorded later, :meth:`_defer`)."""
        self._forget = False
        """Deferred pages had events whose queue rows the outbox wrote: their positions
        are forgotten when the position is recorded (not before: a restart needs them)."""

    async def __call__(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        failures = 0
        try:
            while True:
                try:
                    await self._round()
                except Exception as error:  # the database or the transport: next round
                    self._at = None
                    failures += 1
                    await self._recover(error, failures)
                else:
                    failures = 0
        finally:
            with anyio.CancelScope(shield=True):
                if self.holding:
                    with contextlib.suppress(Exception):  # a dead session holds no lock
                        await self._sync(self._store.unlock, DISPATCH)
                    self.holding = False

    async def _round(self) -> None:
        """Take the lock if free, send one page, wait for events when there were none."""
        if not self.holding:
            self.holding = await self._sync(self._store.try_lock, DISPATCH)
            self._at = None
            if not self.holding:
                await anyio.sleep(self._poll)
                return
            log.info("dispatcher %s took over sending jobs", self._owner)
        sent = self.sent
        read = await self._step(wait=self._poll)
        if self._linger and 0 < read < self._page // 4 and self.sent == sent:
            await anyio.sleep(self._linger)  # let a trickle of events gather (issue 19)

    async def _recover(self, error: Exception, failures: int) -> None:
        """After a failed round: log, back off, and (unless the log itself stopped it) open
        a fresh session. The next round reads the tracked position again, so whatever was
        sent and not recorded is sent again."""
        self.failed_rounds += 1
        delay = min(self._max_backoff, self._poll * 2 ** min(failures - 1, 16))
        if isinstance(error, DispatchStopped):
            log.error("dispatcher %s: %s; retrying in %.1fs", self._owner, error, delay)
            await anyio.sleep(delay)
            return
        log.warning("dispatcher %s: round failed: %s; reconnecting in %.1fs",
                    self._owner, error or type(error).__name__, delay)
        await anyio.sleep(delay)
        if await self._sync(self._reconnect):
            self.reconnects += 1
            self.holding = False  # the lock lived on the old session

    async def step(self) -> int:
        """Send one page of the log's messages; return the events it covered."""
        return await self._step()

    async def _step(self, wait: float = 0.0) -> int:
        """One page in one hop to the session's thread (a second after a send): read,
        sort and, when it sends nothing, advance there too; on an empty page, wait up to
        ``wait`` for events in that same hop."""
        page = await self._sync(self._prepare, wait)
        if page is None:
            return 0
        if page.outgoing:
            await self._transport.send_batch(page.outgoing)
            self.sent += len(page.outgoing)
            await self._sync(self._advance, page.tracking, page.events[-1].position,
                             page.holds, bool(page.queued))
        self.held += len(page.holds.hold)
        dispatched(page.events, page.outgoing, page.queued)  # by the dispatcher or the outbox
        if page.error is not None:
            raise DispatchStopped(f"dispatcher stopped at {page.error}")
        return len(page.events)

    def _prepare(self, wait: float = 0.0) -> Page | None:
        """Read and sort a page (on the session's thread). A page with nothing to send or
        hold moves only the position in memory (:meth:`_defer`); the outbox's positions it
        skipped are forgotten when the position is recorded."""
        if self._at is None:
            self._at = self._store.tracking(DISPATCH)
            self._read_to = self._at.position
        tracking = self._at
        rows = self._store.read_events(self._read_to, self._page)
        if not rows:
            self._persist()
            if wait:
                self._store.wait_for_events(wait)
            return None
        events, error = decode_page(rows)
        if not events:
            return Page(tracking, events, error, set(), Sorted([], [], []), [])
        asks = any(isinstance(e.body, Enqueued | Requeued | Redriven | Released) for e in events)
        queued = self._queued(self._read_to, events) if asks else set()
        messages = [self._message(e, e.position in queued) for e in events]
        holds = sort_page(self._store, self._ledger, events, [m for m in messages if m])
        page = Page(tracking, events, error, queued, holds,
                    holds.send + [hold.outgoing() for hold in holds.release])
        if not page.outgoing:
            self._forget = self._forget or bool(queued)
            if holds.hold:
                self._advance(tracking, events[-1].position, holds)
            else:
                self._defer(events[-1].position)
        return page

    def _defer(self, position: int) -> None:
        """Past a page with nothing to send or hold: read on from ``position``, record it
        with the next page that does something, when the log is read to its head, or
        every :data:`PERSIST_EVERY` events (issue 19). A restart before re-reads those
        pages and finds nothing in them again."""
        self._read_to = position
        if self._at is not None and position - self._at.position >= PERSIST_EVERY:
            self._persist()

    def _persist(self) -> None:
        """Record the position :meth:`_defer` moved in memory, if it did."""
        if self._at is not None and self._read_to > self._at.position:
            self._advance(self._at, self._read_to)

    def _queued(self, after: int, events: list[Event]) -> set[int]:
        """The page's events whose queue row was written with them (ADR 151)."""
        if not events or self._ledger.outbox is None:
            return set()
        rows = self._store.query(
            "outbox_positions.between", {"after": after, "upto": events[-1].position}
        )
        return {int(row["position"]) for row in rows}

    def _message(self, event: Event, queued: bool = False) -> Outgoing | None:
        """The event's message; ``None`` when it asks for none or the outbox wrote it."""
        body, job_id = event.body, event.originator_id
        if isinstance(body, Enqueued):
            self._remember(job_id, (body.customer_id, body.queue, body.priority, 0))
        elif isinstance(body, Requeued) and job_id in self._jobs:
            self._remember(job_id, (*self._jobs[job_id][:3], body.attempt))
        if queued or not isinstance(body, Enqueued | Requeued | Redriven | Released) \
                or held(event):
            return None
        known = self._jobs.get(job_id)
        if known is None or isinstance(body, Redriven):  # the job itself says
            try:
                job = self._ledger.get_job(UUID(job_id))
            except JobNotFound:  # pragma: no cover - the log says it exists
                log.error("dispatcher: job %s of event %d not found", job_id, event.position)
                return None
            known = (*(known or (job.customer_id, job.queue, job.priority))[:3], job.attempt)
            self._remember(job_id, known)
        customer, queue, priority, attempt = known
        return message_for(event, customer, queue, attempt, self._clock(), priority=priority)

    def _remember(self, job_id: str, known: tuple[str, str, int, int]) -> None:
        """Customer, queue, priority and attempt of a job whose events were read (a
        ``Released`` or ``Requeued`` then needs no load of the job)."""
        self._jobs[job_id] = known
        while len(self._jobs) > 100_000:
            self._jobs.popitem(last=False)

    def _advance(
        self, expected: Tracking, position: int, holds: Sorted | None = None,
        queued: bool = False,
    ) -> None:
        queued = queued or self._forget  # with the pages deferred before (ADR 204)
        with self._store.transaction():
            if holds is not None:  # a paused queue's sends wait (adapters/service/dispatch_holds)
                record(self._store, holds)
            if queued:  # the outbox's positions passed (ADR 151)
                self._store.query("outbox_positions.forget", {"upto": position})
            if not self._store.advance(expected, position, self._owner):
                self._at = None
                log.warning("dispatcher: position moved under %s", self._owner)
                return
        self._at = replace(expected, position=position)
        self._read_to, self._forget = position, False

