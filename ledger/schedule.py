"""The schedule aggregate: a cron expression that enqueues a job at each of its ticks.

One ``Schedule`` per name (its id is the uuid5 of the name, :func:`schedule_id`). Its
state says which tick is next (``next_tick``, UTC) and which was last fired. A scheduler
fires a tick by saving, in one transaction, the schedule's ``TickEnqueued`` and the job
the tick enqueues (idempotency key ``schedule:<name>:<tick>``): two schedulers firing
the same tick conflict on the schedule's version, so each tick enqueues exactly once
however many run (docs/adr/0130-schedules.md). Pure: every decision takes ``now``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from uuid import UUID

import msgspec
from eventsourcing.domain import Aggregate

from ledger.commands import QueueName
from ledger.errors import LedgerError, ReservedShape
from ledger.policies.cron import (
    InvalidSchedule,
    MissedTicks,
    check_expression,
    next_tick,
    tick_to_fire,
    zone,
)
from ledger.reserved_shape import tagged_path
from ledger.text import check_value, name_problem

SCHEDULE_NAMESPACE = UUID("0b7e5a52-61c3-4f0e-8d2a-3a9c4e51d130")
MAX_SCHEDULE_NAME: Final = 120
"""So the tick's idempotency key (``schedule:<name>:<tick>``) stays a name (200)."""
MAX_PAYLOAD_BYTES: Final = 64 * 1024
MAX_PAYLOAD_DEPTH: Final = 32
GRACE: Final = timedelta(minutes=1)
"""A tick fired at most this late is on time; later, it was missed (the missed policy)."""
NO_LEAD: Final = timedelta(0)


class ScheduleNotFound(LedgerError):
    """No schedule has this name."""

    code = "schedule_not_found"

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"no schedule named {name!r}")


class ScheduleExists(LedgerError):
    """A schedule has this name already."""

    code = "schedule_exists"

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"a schedule named {name!r} exists; remove it first")


def schedule_id(name: str) -> UUID:
    return uuid.uuid5(SCHEDULE_NAMESPACE, name)


def tick_key(name: str, tick: datetime) -> str:
    """The idempotency key of the job a tick enqueues."""
    return f"schedule:{name}:{tick.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}"


class ScheduleSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What an operator defines; :meth:`checked` validates it."""

    name: str
    cron: str
    queue: str = "default"
    payload: Any = None
    timezone: str = "UTC"
    missed: MissedTicks = MissedTicks.RUN_ONCE
    customer_id: str = "schedules"
    priority: int = 0
    max_attempts: int = 3

    def checked(self) -> ScheduleSpec:
        for field, value, limit in (
            ("name", self.name, MAX_SCHEDULE_NAME), ("customer_id", self.customer_id, 200),
        ):
            problem = name_problem(value) if value else "it is empty"
            if problem is None and len(value) > limit:
                problem = f"it is longer than {limit} characters"
            if problem is not None:
                raise InvalidSchedule(field, problem)
        check_queue(self.queue)
        zone(self.timezone)
        if not -100 <= self.priority <= 100:
            raise InvalidSchedule("priority", "must be between -100 and 100")
        if not 1 <= self.max_attempts <= 100:
            raise InvalidSchedule("max_attempts", "must be between 1 and 100")
        check_payload(self.payload)
        return msgspec.structs.replace(self, cron=check_expression(self.cron))


def check_queue(queue: str) -> None:
    try:
        msgspec.convert(queue, QueueName)
    except msgspec.ValidationError as error:
        raise InvalidSchedule("queue", str(error)) from None


def check_payload(payload: Any) -> None:
    """At most ``MAX_PAYLOAD_BYTES`` of JSON, ``MAX_PAYLOAD_DEPTH`` levels, storable text."""
    stack: list[tuple[Any, int]] = [(payload, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_PAYLOAD_DEPTH:
                raise InvalidSchedule("payload", f"nests more than {MAX_PAYLOAD_DEPTH} levels")
            inner = item.values() if isinstance(item, dict) else item
            stack.extend((value, depth + 1) for value in inner)
    try:
        size = len(msgspec.json.encode(payload))
    except (TypeError, msgspec.EncodeError) as error:
        raise InvalidSchedule("payload", f"not JSON: {error}") from None
    if size > MAX_PAYLOAD_BYTES:
        raise InvalidSchedule("payload", f"{size} bytes of JSON; at most {MAX_PAYLOAD_BYTES}")
    check_value("payload", payload)
    if (tagged := tagged_path("payload", payload)) is not None:
        raise ReservedShape(tagged)  # ADR 186: the schedule's own event could not be read


class Schedule(Aggregate):
    """A cron schedule and the ticks it fired."""

    class Added(Aggregate.Created):
        spec: dict[str, Any]
        next_tick: datetime | None
        actor: str
        reason: str | None

    class Redefined(Aggregate.Event):
        """A removed schedule's name was added again."""

        spec: dict[str, Any]
        next_tick: datetime | None
        actor: str
        reason: str | None

        def apply(self, schedule: Schedule) -> None:
            schedule.define(self.spec, self.next_tick)

    class Paused(Aggregate.Event):
        actor: str
        reason: str | None

        def apply(self, schedule: Schedule) -> None:
            schedule.paused = True

    class Resumed(Aggregate.Event):
        actor: str
        reason: str | None
        next_tick: datetime | None

        def apply(self, schedule: Schedule) -> None:
            schedule.paused = False
            schedule.next_tick = self.next_tick

    class Removed(Aggregate.Event):
        actor: str
        reason: str | None

        def apply(self, schedule: Schedule) -> None:
            schedule.removed = True

    class TickEnqueued(Aggregate.Event):
        """A tick enqueued its job (``late``: seconds after the tick it was fired)."""

        tick: datetime
        job_id: UUID
        late: float
        next_tick: datetime | None
        actor: str

        def apply(self, schedule: Schedule) -> None:
            schedule.last_tick = self.tick
            schedule.last_late = self.late
            schedule.next_tick = self.next_tick

    class TicksSkipped(Aggregate.Event):
        """Ticks were missed and the schedule's policy is ``skip``."""

        missed_from: datetime
        next_tick: datetime | None
        actor: str

        def apply(self, schedule: Schedule) -> None:
            schedule.next_tick = self.next_tick

    def __init__(
        self, spec: dict[str, Any], next_tick: datetime | None, actor: str, reason: str | None
    ) -> None:
        self.paused = False
        self.last_tick: datetime | None = None
        self.last_late: float | None = None
        self.define(spec, next_tick)

    def define(self, spec: dict[str, Any], next_tick: datetime | None) -> None:
        self.spec = spec
        self.next_tick = next_tick
        self.removed = False
        self.paused = False

    @classmethod
    def restored(
        cls, version: int, spec: dict[str, Any], *, paused: bool, next_tick: datetime | None,
        last_tick: datetime | None, last_late: float | None, at: datetime,
    ) -> Schedule:
        """The schedule at ``version`` as a view row has it, without reading its events: a
        decision on it is saved only if the stored schedule is still at ``version`` (the
        save conflicts otherwise), so a stale row can delay a tick, never repeat one."""
        schedule = cls.__new__(cls)
        schedule.__dict__.update(
            _id=schedule_id(str(spec["name"])), _version=version, _created_on=at,
            _modified_on=at, _pending_events=[], paused=paused, removed=False, spec=spec,
            next_tick=next_tick, last_tick=last_tick, last_late=last_late,
        )
        return schedule

    @property
    def settings(self) -> ScheduleSpec:
        return msgspec.convert(self.spec, ScheduleSpec)

    @classmethod
    def add(cls, spec: ScheduleSpec, actor: str, reason: str | None, now: datetime) -> Schedule:
        spec = spec.checked()
        return cls._create(
            cls.Added, id=schedule_id(spec.name), timestamp=now,
            spec=msgspec.to_builtins(spec), next_tick=_first(spec, now), actor=actor,
            reason=reason,
        )

    def redefine(self, spec: ScheduleSpec, actor: str, reason: str | None, now: datetime) -> None:
        if not self.removed:
            raise ScheduleExists(spec.name)
        spec = spec.checked()
        after = max(now, self.last_tick) if self.last_tick else now
        self.trigger_event(
            self.Redefined, timestamp=now, spec=msgspec.to_builtins(spec),
            next_tick=_first(spec, after), actor=actor, reason=reason,
        )

    def pause(self, actor: str, reason: str | None, now: datetime) -> bool:
        self._check_exists()
        if self.paused:
            return False
        self.trigger_event(self.Paused, timestamp=now, actor=actor, reason=reason)
        return True

    def resume(self, actor: str, reason: str | None, now: datetime) -> bool:
        """Resume; the ticks that fell while paused are not fired (the next is after now)."""
        self._check_exists()
        if not self.paused:
            return False
        after = max(now, self.last_tick) if self.last_tick else now
        self.trigger_event(
            self.Resumed, timestamp=now, actor=actor, reason=reason,
            next_tick=_first(self.settings, after),
        )
        return True

    def remove(self, actor: str, reason: str | None, now: datetime) -> None:
        self._check_exists()
        self.trigger_event(self.Removed, timestamp=now, actor=actor, reason=reason)

    def due(self, now: datetime, lead: timedelta = NO_LEAD) -> bool:
        """Whether the next tick is to be fired at ``now``: it is at most ``lead`` ahead
        (a tick fired ahead enqueues its job scheduled for the tick's time)."""
        return not (self.paused or self.removed or self.next_tick is None
                    or self.next_tick > now + lead)

    def fired_ahead(self, now: datetime) -> datetime | None:
        """The tick fired ahead whose time has not come at ``now`` (its job is still
        scheduled): pausing or removing the schedule cancels that job."""
        return self.last_tick if self.last_tick is not None and self.last_tick > now else None

    def decide_tick(
        self, now: datetime, actor: str, lead: timedelta = NO_LEAD
    ) -> datetime | None:
        """Which tick to fire now, up to ``lead`` ahead of its time (``None``: nothing; the
        missed ticks were skipped, which this records). The caller enqueues the tick's job
        (scheduled for the tick when it is ahead) and calls :meth:`fired`."""
        if not self.due(now, lead):
            return None
        assert self.next_tick is not None
        spec = self.settings
        tick = tick_to_fire(
            spec.cron, spec.timezone, spec.missed, due=self.next_tick, now=now, grace=GRACE
        )
        if tick is None:
            self.trigger_event(
                self.TicksSkipped, timestamp=now, missed_from=self.next_tick,
                next_tick=next_tick(spec.cron, spec.timezone, now), actor=actor,
            )
        return tick

    def fired(self, tick: datetime, job_id: UUID, now: datetime, actor: str) -> None:
        """Record the tick's job (``late`` is 0 for a tick fired ahead: the event's
        timestamp says how far ahead)."""
        spec = self.settings
        self.trigger_event(
            self.TickEnqueued, timestamp=now, tick=tick, job_id=job_id,
            late=max(0.0, (now - tick).total_seconds()),
            next_tick=next_tick(spec.cron, spec.timezone, max(tick, now - GRACE)), actor=actor,
        )

    def _check_exists(self) -> None:
        if self.removed:
            raise ScheduleNotFound(str(self.spec["name"]))


def _first(spec: ScheduleSpec, after: datetime) -> datetime | None:
    return next_tick(spec.cron, spec.timezone, after)
