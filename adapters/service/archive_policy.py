"""The archive policy of ``ledger serve`` (``ARCHIVE_OLDER_THAN``, off by default; ADR 110):
every round, archive the jobs that ended longer ago than the setting, when that is worth
a segment (``ARCHIVE_MIN_EVENTS`` events would move, or the oldest job due ended
``ARCHIVE_MAX_WAIT`` before the cut: :func:`~ledger.policies.archive_due.worth_a_segment`);
else the round records nothing and takes no checkpoint. A round another
process is running (:class:`ArchiveBusy`), one that raced an append
(:class:`ArchiveRaced`) or a failed one (the database restarting) waits for the next."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any

import anyio
from anyio.abc import TaskStatus

from adapters.service.archive import run_archive
from adapters.service.archive_reader import segment_store
from adapters.service.backend import Backend
from adapters.service.settings import Settings
from ledger.policies.archive_due import ArchiveDue, worth_a_segment

log = logging.getLogger(__name__)

ROUND_SECONDS = 300.0


def archive_due(backend: Backend, cut: datetime) -> ArchiveDue:
    tables = backend.archive()
    try:
        return tables.due(cut)
    finally:
        tables.close()


def archive_round(backend: Backend, settings: Settings, older_than: timedelta,
                  now: datetime) -> str:
    due = archive_due(backend, now - older_than)
    if not worth_a_segment(due, cut=now - older_than, min_events=settings.archive_min_events,
                           max_wait=settings.archive_max_wait):
        return (f"archive: {due.jobs} job(s), {due.events} event(s) due, below "
                f"{settings.archive_min_events} and none waiting "
                f"{settings.archive_max_wait}; nothing recorded")
    store = segment_store(settings)
    try:
        report = run_archive(backend, store, older_than, now)
    finally:
        store.close()
    return (f"archive: {report.jobs} job(s), {report.events} event(s) into "
            f"{len(report.segments)} segment(s); {report.skipped} left hot")


def archive_part(
    backend: Backend, settings: Settings, clock: Callable[[], datetime],
    *, round_seconds: float = ROUND_SECONDS,
) -> Callable[..., Coroutine[Any, Any, None]]:
    older_than = settings.archive_older_than
    assert older_than is not None

    async def part(*, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            try:
                log.info(await anyio.to_thread.run_sync(
                    archive_round, backend, settings, older_than, clock()
                ))
            except Exception as error:  # busy, raced, or the database restarting
                log.warning("archive: %s", error or type(error).__name__)
            await anyio.sleep(round_seconds)

    return part
