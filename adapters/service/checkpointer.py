"""The checkpointer part of ``ledger serve``: a checkpoint of each view every
``CHECKPOINT_EVERY_EVENTS`` events, the newest ``CHECKPOINT_KEEP`` kept (ADR 90).

Each round opens a session on the views and one on the checkpoints, takes a checkpoint of
every view whose position moved at least ``every`` events past its newest checkpoint, and
prunes. A take another process is running (:class:`CheckpointBusy`) waits for the next
round; a failed round (the database restarting) is logged and retried next round.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any

import anyio
from anyio.abc import TaskStatus

from adapters.service.backend import Backend
from projections.checkpoints import Checkpoint, CheckpointBusy, prune, take
from projections.model import View
from projections.registry import VIEWS

log = logging.getLogger(__name__)

ROUND_SECONDS = 10.0


def checkpoint_round(
    backend: Backend, views: list[View], every: int, keep: int, now: datetime
) -> list[Checkpoint]:
    """Checkpoint the views that moved ``every`` events past their newest checkpoint."""
    store, checkpoints = backend.open_views(), backend.checkpoints()
    taken = []
    try:
        for view in views:
            newest = checkpoints.list(view.name)
            since = newest[0].position if newest else 0
            if store.tracking(view.name).position - since < every:
                continue
            try:
                taken.append(take(store, checkpoints, view, now))
            except CheckpointBusy:
                log.info("checkpointer: another take is running; %s waits", view.name)
                continue
            prune(checkpoints, view.name, keep)
    finally:
        checkpoints.close()
        store.close()
    return taken


def checkpoint_part(
    backend: Backend, every: int, keep: int, clock: Callable[[], datetime],
    *, round_seconds: float = ROUND_SECONDS,
) -> Callable[..., Coroutine[Any, Any, None]]:
    async def part(*, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        views = list(VIEWS.values())
        while True:
            try:
                for made in await anyio.to_thread.run_sync(
                    checkpoint_round, backend, views, every, keep, clock()
                ):
                    log.info("checkpoint of %s at position %d (%d rows, %d bytes)",
                             made.view, made.position, made.row_count, made.byte_count)
            except Exception as error:  # the database may be restarting: next round
                log.warning("checkpointer: %s", error or type(error).__name__)
            await anyio.sleep(round_seconds)

    return part
