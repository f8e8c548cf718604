"""The schedules' commands and the firing of their ticks, on the job ledger's store.

A tick is fired by appending, in ONE transaction, the schedule's ``TickEnqueued`` and
the ``Enqueued`` of its job (id from the idempotency key ``schedule:<name>:<tick>``).
Any number of schedulers may fire the same schedules: the loser of a race conflicts on
the schedule's version (and the job's), its transaction appends nothing, and it decides
again from the stored schedule, which says the tick was fired. A scheduler killed in the
middle appended all of it or nothing. Many ticks are fired in one transaction; a
conflict falls back to one schedule at a time (docs/adr/0130-schedules.md).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, ProcessingEvent
from eventsourcing.domain import Snapshot
from eventsourcing.persistence import RecordConflictError

from ledger.action import checked_reason
from ledger.application import JobLedger
from ledger.errors import ConcurrencyExhausted, JobNotFound
from ledger.job import Job
from ledger.job_ids import idempotent_job_id
from ledger.policies.cron import InvalidSchedule
from ledger.schedule import (
    NO_LEAD,
    Schedule,
    ScheduleNotFound,
    ScheduleSpec,
    schedule_id,
    tick_key,
)
from ledger.text import MAX_NAME_CHARS, name_problem

SNAPSHOT_EVERY = 100
"""Snapshot a schedule every this many events (one per tick)."""
ROUNDS = 8


class ScheduleBook:
    """Operators' commands on schedules and the schedulers' firing of ticks."""

    def __init__(self, ledger: JobLedger, lead: timedelta = NO_LEAD) -> None:
        self._ledger = ledger
        self._lead = lead
        """How far ahead of its time a tick is fired (its job scheduled for the tick)."""
        self._held: dict[UUID, Schedule] = {}
        """Schedules as this process last saved or loaded them (a conflict reloads)."""

    # -- reading ------------------------------------------------------------------------

    def get(self, name: str) -> Schedule:
        """The schedule as stored now; :class:`ScheduleNotFound` if absent or removed."""
        schedule = self._load(schedule_id(name))
        if schedule is None or schedule.removed:
            raise ScheduleNotFound(name)
        return schedule

    def _load(self, sid: UUID) -> Schedule | None:
        try:
            schedule: Schedule = self._ledger.repository.get(sid)
        except AggregateNotFoundError:
            return None
        return schedule

    # -- operators ----------------------------------------------------------------------

    def add(self, spec: ScheduleSpec, actor: str, reason: str | None, now: datetime) -> Schedule:
        spec = spec.checked()
        reason = _who(actor, reason)
        existing = self._load(schedule_id(spec.name))
        if existing is None:
            schedule = Schedule.add(spec, actor, reason, now)
        else:
            existing.redefine(spec, actor, reason, now)
            schedule = existing
        self._save([schedule])
        return schedule

    def pause(self, name: str, actor: str, reason: str | None, now: datetime) -> Schedule:
        why = _who(actor, reason)
        return self._control(name, lambda s: s.pause(actor, why, now), (actor, why, now))

    def resume(self, name: str, actor: str, reason: str | None, now: datetime) -> Schedule:
        why = _who(actor, reason)
        return self._control(name, lambda s: s.resume(actor, why, now))

    def remove(self, name: str, actor: str, reason: str | None, now: datetime) -> Schedule:
        why = _who(actor, reason)
        return self._control(name, lambda s: s.remove(actor, why, now), (actor, why, now))

    def _control(
        self, name: str, decide: Callable[[Schedule], object],
        cancel_ahead: tuple[str, str | None, datetime] | None = None,
    ) -> Schedule:
        """Decide on the stored schedule and save; with ``cancel_ahead`` (pause, remove),
        in the same transaction cancel the job of a tick fired ahead whose time has not
        come (it is still scheduled)."""
        for tries in range(ROUNDS):
            self._ledger.back_off(tries)
            schedule = self.get(name)
            decide(schedule)
            jobs = self._cancel_ahead(schedule, *cancel_ahead) if cancel_ahead else []
            try:
                if schedule.pending_events:
                    self._save([schedule], jobs)
            except RecordConflictError:  # a tick fired meanwhile: decide again
                continue
            return schedule
        raise ConcurrencyExhausted()

    def _cancel_ahead(
        self, schedule: Schedule, actor: str, reason: str | None, now: datetime
    ) -> list[Job]:
        tick = schedule.fired_ahead(now) if schedule.pending_events else None
        if tick is None:
            return []
        spec = schedule.settings
        job = self._load_job(idempotent_job_id(spec.customer_id, tick_key(spec.name, tick)))
        if job is None:
            return []
        job.cancel(actor, now, reason or f"schedule {spec.name} {_word(schedule)}")
        return [job] if job.pending_events else []

    def _load_job(self, job_id: UUID) -> Job | None:
        try:
            job: Job = self._ledger.repository.get(job_id)
        except AggregateNotFoundError:
            return None
        return job

    # -- schedulers ---------------------------------------------------------------------

    def done_here(self, sid: UUID, version: int | None, now: datetime) -> bool:
        """Whether this process saved the schedule past ``version`` and it is not due at
        ``now`` (a view row behind what this process fired: nothing to decide)."""
        held = self._held.get(sid)
        return (held is not None and version is not None and held.version > version
                and not held.due(now, self._lead))

    def fire(
        self, candidates: Sequence[Schedule], now: datetime, actor: str
    ) -> tuple[list[UUID], list[UUID]]:
        """Fire the due ticks of ``candidates`` (schedules as a view row has them, see
        :meth:`Schedule.restored`; this process's own copy when it is newer) in one
        transaction: the jobs enqueued, and the schedules that conflicted (another
        scheduler fired or changed them; nothing of the batch was saved). No reads."""
        chosen = []
        for candidate in candidates:
            held = self._held.get(candidate.id)
            chosen.append(held if held is not None and held.version >= candidate.version
                          else candidate)
        try:
            return self._decide_and_save(chosen, now, actor, look=False), []
        except RecordConflictError:
            for schedule in chosen:
                self._held.pop(schedule.id, None)
            return [], [schedule.id for schedule in chosen]

    def fire_due(self, ids: Iterable[UUID], now: datetime, actor: str) -> list[UUID]:
        """Fire the due tick of each schedule in ``ids`` (those the view says are due);
        the ids of the jobs this call enqueued. One transaction for all of them; after a
        conflict, one schedule at a time from the stored schedules."""
        ids = list(ids)
        try:
            return self._fire(ids, now, actor, fresh=False)
        except RecordConflictError:
            for sid in ids:
                self._held.pop(sid, None)
        enqueued: list[UUID] = []
        for sid in ids:
            for tries in range(ROUNDS):
                self._ledger.back_off(tries)
                with contextlib.suppress(RecordConflictError):
                    enqueued += self._fire([sid], now, actor, fresh=True)
                    break
                self._held.pop(sid, None)
        return enqueued

    def _fire(self, ids: Sequence[UUID], now: datetime, actor: str, *, fresh: bool) -> list[UUID]:
        schedules = []
        for sid in ids:
            schedule = self._held.get(sid) or self._load(sid)
            if schedule is not None:
                schedules.append(schedule)
        try:
            return self._decide_and_save(schedules, now, actor, look=fresh)
        except RecordConflictError:
            for schedule in schedules:
                self._held.pop(schedule.id, None)
            raise

    def _decide_and_save(
        self, schedules: Sequence[Schedule], now: datetime, actor: str, *, look: bool
    ) -> list[UUID]:
        changed: list[Schedule] = []
        jobs: list[Job] = []
        for schedule in schedules:
            tick = schedule.decide_tick(now, actor, self._lead)
            if tick is not None:
                job = self._job_of(schedule, tick, now, look=look)
                schedule.fired(tick, job.id, now, actor)
                if job.pending_events:
                    jobs.append(job)
            if schedule.pending_events:
                changed.append(schedule)
        if changed:
            try:
                self._save(changed, jobs)
            except BaseException:  # their decisions were not saved: forget them
                for schedule in changed:
                    self._held.pop(schedule.id, None)
                raise
        return [job.id for job in jobs]

    def _job_of(self, schedule: Schedule, tick: datetime, now: datetime, *, look: bool) -> Job:
        """The tick's job: a new one (scheduled for the tick when fired ahead of it), or
        (``look``, after a conflict) the one already stored under its key (enqueued by a
        client with the same key)."""
        spec = schedule.settings
        key = tick_key(spec.name, tick)
        job_id = idempotent_job_id(spec.customer_id, key)
        if look:
            with contextlib.suppress(JobNotFound):
                return self._ledger.get_job(job_id)
        return Job.enqueue(
            job_id=job_id, customer_id=spec.customer_id, queue=spec.queue,
            payload=spec.payload, max_attempts=spec.max_attempts, idempotency_key=key,
            now=now, priority=spec.priority, run_at=tick if tick > now else None,
        )

    def _save(self, schedules: Sequence[Schedule], jobs: Sequence[Job] = ()) -> None:
        due = [s for s in schedules if _snapshot_due(s)]
        # save(*aggregates) without collect_events' two runtime-protocol isinstance checks
        # per object (a third of a batch's time; JobLedger._append does the same).
        processing_event: ProcessingEvent[UUID] = ProcessingEvent()
        for aggregate in (*schedules, *jobs):
            processing_event.events.extend(aggregate.collect_events())
            processing_event.aggregates[aggregate.id] = aggregate
        self._ledger._notify(self._ledger._record(processing_event))
        for schedule in schedules:
            self._held[schedule.id] = schedule
        if due and self._ledger.snapshots is not None:
            with contextlib.suppress(RecordConflictError):  # another process took it
                self._ledger.snapshots.put([Snapshot.take(s) for s in due])


def _who(actor: str, reason: str | None) -> str | None:
    """Refuse an actor that is not a name or a reason that is not storable text (500
    characters); the reason, ``None`` when empty."""
    problem = name_problem(actor) if actor else "it is empty"
    if problem is None and len(actor) > MAX_NAME_CHARS:
        problem = f"it is longer than {MAX_NAME_CHARS} characters"
    if problem is not None:
        raise InvalidSchedule("actor", problem)
    return checked_reason(reason)


def _word(schedule: Schedule) -> str:
    return "removed" if schedule.removed else "paused"


def _snapshot_due(schedule: Schedule) -> bool:
    first = schedule.version - len(schedule.pending_events) + 1
    return any(v % SNAPSHOT_EVERY == 0 for v in range(first, schedule.version + 1))
