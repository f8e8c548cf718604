"""The heartbeat loop: every ``heartbeat_interval``, one call records a heartbeat of every
running attempt, then their messages' visibility is extended.

An attempt the ledger answers superseded is abandoned (its handler cancelled, its result
dropped). One it answers cancel-requested (an operator cancelled the job, ADR 100) has its
handler cancelled and is reported cancelled; in-process the worker learns it sooner, from
the ledger's cache, every :data:`CANCEL_WATCH` seconds (:meth:`Heartbeats.watch_cancels`).

A report waits for a heartbeat in flight (:meth:`Heartbeats.settled`), so that
no heartbeat lands after the attempt's end.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import anyio

from adapters.worker.attempt import Attempt
from adapters.worker.config import WorkerConfig
from adapters.worker.messages import Messages
from adapters.worker.port import Beat, LedgerPort
from adapters.worker.stats import WorkerStats

log = logging.getLogger("ledger.worker")

CANCEL_WATCH = 0.2
"""Seconds between looks at the port's own knowledge of cancel requests (no I/O)."""
CANCEL_POLL = 1.0
"""Seconds between questions to the ledger about cancel requests (``poll_cancels``: over
HTTP one ``POST /workers/cancels``), so a cancel does not wait for the next heartbeat."""


class Heartbeats:
    """Heartbeats of the attempts in ``running`` (the worker's own, live mapping)."""

    def __init__(
        self,
        ledger: LedgerPort,
        config: WorkerConfig,
        running: Mapping[tuple[Any, int], Attempt],
        messages: Messages,
        stats: WorkerStats,
    ) -> None:
        self.ledger = ledger
        self.config = config
        self.running = running
        self.messages = messages
        self.stats = stats
        self._in_flight: anyio.Event | None = None

    async def settled(self) -> None:
        """Wait until no heartbeat call is in flight."""
        in_flight = self._in_flight
        if in_flight is not None:
            await in_flight.wait()

    async def loop(self) -> None:
        """Beat every interval until cancelled; a failed beat is logged, never raised."""
        interval = self.config.heartbeat_interval
        next_beat = anyio.current_time() + interval
        while True:
            await anyio.sleep(max(0.0, next_beat - anyio.current_time()))
            next_beat = max(next_beat + interval, anyio.current_time())
            runs = [
                r for r in self.running.values() if not r.reporting and not r.ctx.superseded
            ]
            if runs:
                try:
                    await self._beat(runs)
                except Exception:
                    log.exception("heartbeat of %d job(s) failed", len(runs))

    async def watch_cancels(self) -> None:
        """Cancel the handlers of jobs the port already knows were cancelled, between
        heartbeats (in-process: the cancel was executed by this process's ledger), and
        every :data:`CANCEL_POLL` seconds of those the ledger says were."""
        next_poll = anyio.current_time() + CANCEL_POLL
        while True:
            await anyio.sleep(CANCEL_WATCH)
            runs = [r for r in self.running.values() if self._live(r)]
            if not runs:
                continue
            attempts = [(r.ctx.job_id, r.ctx.attempt) for r in runs]
            try:
                wanted = self.ledger.requested_cancels(attempts)
                if anyio.current_time() >= next_poll:
                    next_poll = anyio.current_time() + CANCEL_POLL
                    wanted |= await self.ledger.poll_cancels(self.config.worker_id, attempts)
            except Exception:
                log.exception("looking for cancel requests failed")
                continue
            for run in runs:
                if run.ctx.job_id in wanted:
                    self._cancel(run)

    @staticmethod
    def _live(run: Attempt) -> bool:
        return not run.reporting and not run.ctx.superseded and not run.ctx.cancel_requested

    @staticmethod
    def _cancel(run: Attempt) -> None:
        log.info("job %s attempt %d was cancelled: stopping its handler",
                 run.ctx.job_id, run.ctx.attempt)
        run.cancel()

    async def _beat(self, runs: list[Attempt]) -> None:
        settled = self._in_flight = anyio.Event()
        try:
            answers = await self.ledger.heartbeats(
                self.config.worker_id, [(r.ctx.job_id, r.ctx.attempt) for r in runs]
            )
        finally:
            self._in_flight = None
            settled.set()
        live = []
        for run in runs:
            answer = answers.get(run.ctx.job_id, Beat.UNKNOWN)
            if answer is Beat.SUPERSEDED:
                log.warning("job %s attempt %d is superseded: abandoning its handler",
                            run.ctx.job_id, run.ctx.attempt)
                run.supersede()
                run.trace.heartbeat(answer.value)
                continue
            if answer is Beat.CANCEL_REQUESTED and not run.ctx.cancel_requested:
                self._cancel(run)
            self.stats.heartbeats += answer in (Beat.RECORDED, Beat.CANCEL_REQUESTED)
            run.trace.heartbeat(answer.value)
            live.append(run)
        async with anyio.create_task_group() as tg:
            for run in live:
                tg.start_soon(self.messages.extend, run.received)
