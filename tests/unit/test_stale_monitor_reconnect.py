"""Regression (found by tests/faults): after a PostgreSQL restart the stale monitor kept
scanning on its dead session forever ("the connection is closed"), so jobs of a killed
worker stayed in progress. It now opens a new session after a failed scan."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import anyio

from adapters.service.monitors import StaleMonitor
from adapters.service.settings import Settings
from ledger.application import JobLedger
from projections.store import ViewStore


class DeadSession:
    closed = False

    def query(self, name: str, params: Any) -> list[tuple[Any, ...]]:
        raise ConnectionError("the connection is closed")

    def close(self) -> None:
        self.closed = True


class LiveSession:
    def __init__(self) -> None:
        self.queries = 0

    def query(self, name: str, params: Any) -> list[tuple[Any, ...]]:
        self.queries += 1
        return []

    def close(self) -> None:
        pass


def test_the_stale_monitor_opens_a_new_session_after_a_failed_scan() -> None:
    dead, live = DeadSession(), LiveSession()
    monitor = StaleMonitor(
        cast(ViewStore, dead), cast(JobLedger, None),
        Settings(check_interval_seconds=0.01), clock=lambda: datetime.now(UTC),
        detected_by="test", reopen=lambda: cast(ViewStore, live),
    )

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            await tg.start(monitor)
            with anyio.fail_after(5):
                while live.queries < 2:
                    await anyio.sleep(0.01)
            tg.cancel_scope.cancel()

    anyio.run(main)
    assert dead.closed
    assert monitor.store is cast(ViewStore, live)


def test_without_reopen_it_keeps_its_session() -> None:
    dead = DeadSession()
    monitor = StaleMonitor(
        cast(ViewStore, dead), cast(JobLedger, None),
        Settings(check_interval_seconds=0.01), clock=lambda: datetime.now(UTC),
        detected_by="test",
    )

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            await tg.start(monitor)
            await anyio.sleep(0.05)
            tg.cancel_scope.cancel()

    anyio.run(main)
    assert monitor.store is cast(ViewStore, dead)
    assert not dead.closed


class DeadLockSession(DeadSession):
    def try_lock(self, name: str) -> bool:
        raise ConnectionError("the connection is closed")

    def unlock(self, name: str) -> None:
        raise ConnectionError("the connection is closed")


class LiveLockSession(LiveSession):
    def __init__(self) -> None:
        super().__init__()
        self.locks = 0

    def try_lock(self, name: str) -> bool:
        self.locks += 1
        return True

    def unlock(self, name: str) -> None:
        pass


def test_the_dead_letter_monitor_opens_a_new_session_and_retakes_its_lock() -> None:
    from adapters.service.monitors import DeadLetterMonitor
    from adapters.slack.webhook import AlertSink

    dead, live = DeadLockSession(), LiveLockSession()
    monitor = DeadLetterMonitor(
        cast(ViewStore, dead), cast(JobLedger, None), None, cast(AlertSink, None),
        Settings(), clock=lambda: datetime.now(UTC), channel="log", tick=0.01,
        reopen=lambda: cast(ViewStore, live),
    )

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            await tg.start(monitor)
            with anyio.fail_after(5):
                while live.queries < 2:
                    await anyio.sleep(0.01)
            tg.cancel_scope.cancel()

    anyio.run(main)
    assert dead.closed
    assert live.locks == 1
    assert monitor.store is cast(ViewStore, live)
