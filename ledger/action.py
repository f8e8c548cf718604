"""Bulk actions: one operator's cancel, retry or requeue of every job matching a filter.

An action is recorded like a job (ADR 100): ``Started`` names the kind, the filter, the
actor, the reason and how many jobs matched; after each batch of commands ``Progressed``
names the last job acted on (jobs are taken in id order), so an action interrupted by a
crash resumes after its last recorded batch; ``Finished`` or ``Interrupted`` end a run.
A batch repeated after a crash acts on no job twice: the ledger refuses a second cancel,
redrive or requeue of a job that already moved on.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

import msgspec
from eventsourcing.domain import Aggregate

from ledger.commands import Name, QueueName
from ledger.errors import IllegalTransition, InvalidCommand, LedgerError
from ledger.status import Status
from ledger.text import check_value

BATCH_SIZE = 1000
"""Jobs per batch: one ``execute_batch`` and one ``Progressed`` each."""
SAMPLE_SIZE = 10
"""Jobs a dry run shows."""
MAX_REASON = 500

Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_REASON)]
ErrorNeedle = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class ActionKind(StrEnum):
    """What a bulk action does to each job it selects."""

    CANCEL = "cancel"
    RETRY = "retry"
    """Redrive a dead-lettered job."""
    REQUEUE = "requeue"


class ActionState(StrEnum):
    RUNNING = "running"
    FINISHED = "finished"
    INTERRUPTED = "interrupted"


class InvalidFilter(InvalidCommand):
    """The action's filter is invalid."""

    code = "invalid_filter"


class ActionNotFound(LedgerError):
    """No action has this id."""

    code = "action_not_found"

    def __init__(self, action_id: UUID) -> None:
        self.action_id = action_id
        super().__init__(f"no action {action_id}")


class ActionFinished(IllegalTransition):
    """The action has finished; there is nothing to resume."""

    code = "action_finished"

    def __init__(self, action_id: UUID) -> None:
        self.job_id, self.status, self.action = action_id, "finished", "resume"
        LedgerError.__init__(self, f"action {action_id} has finished; nothing to resume")


class ActionFilter(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """Which jobs an action selects (every field optional; all given must match)."""

    status: str | None = None
    queue: QueueName | None = None
    customer_id: Name | None = None
    since: datetime | None = None
    """Enqueued at or after."""
    until: datetime | None = None
    """Enqueued before."""
    error_contains: ErrorNeedle | None = None
    """The job's last error holds this text."""

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = msgspec.to_builtins(self)
        return data


def checked_filter(data: dict[str, Any] | ActionFilter) -> ActionFilter:
    """A valid filter from its JSON shape: known fields, a known status, storable text,
    zoned times in order; :class:`InvalidFilter` naming what is wrong."""
    try:
        found = data if isinstance(data, ActionFilter) else msgspec.convert(data, ActionFilter)
        found = msgspec.convert(msgspec.to_builtins(found), ActionFilter)
    except msgspec.ValidationError as error:
        raise InvalidFilter(f"invalid filter: {error}") from None
    for name in found.__struct_fields__:
        check_value(f"filter.{name}", getattr(found, name))
    if found.status is not None and found.status not in {s.value for s in Status}:
        known = ", ".join(s.value for s in Status)
        raise InvalidFilter(f"unknown status {found.status!r} (one of {known})")
    for name in ("since", "until"):
        moment = getattr(found, name)
        if moment is not None and moment.utcoffset() is None:
            raise InvalidFilter(f"filter.{name} needs a time zone")
    if found.since and found.until and found.since >= found.until:
        raise InvalidFilter("filter.since must be before filter.until")
    return found


def checked_reason(reason: str | None) -> str | None:
    """An operator's reason: storable text of at most 500 characters, or ``None``."""
    if reason is None or reason == "":
        return None
    check_value("reason", reason)
    if len(reason) > MAX_REASON:
        raise InvalidCommand(f"reason is longer than {MAX_REASON} characters")
    return reason


class Action(Aggregate):
    """One bulk action and its progress."""

    class Started(Aggregate.Created):
        kind: str
        filter: dict[str, Any]
        actor: str
        reason: str | None
        total: int

    class Progressed(Aggregate.Event):
        """A batch was executed: ``done`` jobs so far, the last of them ``last_job_id``."""

        last_job_id: str
        done: int
        acted: int
        """Of ``done``, how many the ledger accepted (the others had moved on)."""

        def apply(self, action: Action) -> None:
            action.state = ActionState.RUNNING
            action.last_job_id = self.last_job_id
            action.done = self.done
            action.acted = self.acted

    class Finished(Aggregate.Event):
        def apply(self, action: Action) -> None:
            action.state = ActionState.FINISHED

    class Interrupted(Aggregate.Event):
        error: str

        def apply(self, action: Action) -> None:
            action.state = ActionState.INTERRUPTED
            action.error = self.error

    def __init__(
        self, kind: str, filter: dict[str, Any], actor: str, reason: str | None, total: int
    ) -> None:
        self.kind = ActionKind(kind)
        self.filter = filter
        self.actor = actor
        self.reason = reason
        self.total = total
        self.state = ActionState.RUNNING
        self.last_job_id: str | None = None
        self.done = 0
        self.acted = 0
        self.error: str | None = None

    @property
    def job_filter(self) -> ActionFilter:
        return msgspec.convert(self.filter, ActionFilter)

    @property
    def after(self) -> UUID | None:
        """Where the next batch starts (after this job id), or ``None`` at the start."""
        return UUID(self.last_job_id) if self.last_job_id else None

    @classmethod
    def start(
        cls, *, action_id: UUID, kind: ActionKind, job_filter: ActionFilter, actor: str,
        reason: str | None, total: int, now: datetime,
    ) -> Action:
        check_value("actor", actor)
        return cls._create(
            cls.Started, id=action_id, timestamp=now, kind=kind.value,
            filter=job_filter.to_dict(), actor=actor, reason=checked_reason(reason),
            total=total,
        )

    def check_resumable(self) -> None:
        if self.state is ActionState.FINISHED:
            raise ActionFinished(self.id)

    def progress(self, last_job_id: UUID, batch: int, acted: int, now: datetime) -> None:
        """Record a batch of ``batch`` jobs ending at ``last_job_id`` (ids only grow)."""
        self.check_resumable()
        if self.after is not None and last_job_id <= self.after:
            raise InvalidCommand(f"action {self.id} already went past {last_job_id}")
        self.trigger_event(
            self.Progressed, timestamp=now, last_job_id=str(last_job_id),
            done=self.done + batch, acted=self.acted + acted,
        )

    def finish(self, now: datetime) -> None:
        self.check_resumable()
        self.trigger_event(self.Finished, timestamp=now)

    def interrupt(self, error: str, now: datetime) -> None:
        self.check_resumable()
        self.trigger_event(self.Interrupted, timestamp=now, error=error[:2000])

    def summary(self) -> dict[str, Any]:
        """JSON-ready: what the CLI and ``GET /actions/{id}`` show."""
        return {
            "action_id": str(self.id), "kind": self.kind.value, "state": self.state.value,
            "filter": self.filter, "actor": self.actor, "reason": self.reason,
            "total": self.total, "done": self.done, "acted": self.acted,
            "skipped": self.done - self.acted, "last_job_id": self.last_job_id,
            "error": self.error, "started_at": self.created_on.isoformat(),
        }
