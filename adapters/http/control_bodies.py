"""Bodies of the operator controls' routes (ADR 100): a reason, a queue's cap, a bulk
action; and what the bulk action routes answer."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec

from adapters.http.bodies import Body
from ledger.action import ActionFilter, ActionKind, Reason

MaxRunning = Annotated[int, msgspec.Meta(ge=1, le=1_000_000)]


class ReasonRequest(Body, frozen=True):
    """An operator's control of one job or queue, with an optional why."""

    reason: Reason | None = None


class LimitRequest(Body, frozen=True):
    """Cap the queue's running jobs across all workers (``null`` lifts the cap)."""

    max_running: MaxRunning | None
    reason: Reason | None = None


class ActionRequest(Body, frozen=True):
    """Cancel, retry (redrive dead letters) or requeue every job matching ``filter``;
    ``dry_run`` answers the count and a sample of ten and appends nothing."""

    kind: ActionKind
    filter: ActionFilter = msgspec.field(default_factory=ActionFilter)
    reason: Reason | None = None
    dry_run: bool = False


class ActionSample(msgspec.Struct, frozen=True):
    job_id: UUID
    customer_id: str
    queue: str
    status: str
    enqueued_at: datetime
    last_error: str | None


class ActionPreview(msgspec.Struct, frozen=True):
    kind: str
    filter: dict[str, Any]
    count: int
    sample: list[ActionSample]
    dry_run: bool = True


class ActionView(msgspec.Struct, frozen=True):
    """A bulk action and how far it got."""

    action_id: UUID
    kind: str
    state: str
    """``running`` (or killed mid-run: resume it), ``interrupted`` or ``finished``."""
    filter: dict[str, Any]
    actor: str
    reason: str | None
    total: int
    done: int
    acted: int
    skipped: int
    """Jobs that had moved on when their batch ran (the ledger refused the command)."""
    last_job_id: str | None
    error: str | None
    started_at: str
