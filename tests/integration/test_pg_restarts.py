"""A PostgreSQL restart (``pg_ctl restart -m immediate`` and ``-m fast``) costs at most the
requests in flight during it.

Before, the pooled connections that died with the server stayed in their pools: the rate
limiter's first statement afterwards met its dead connection and fell back to in-memory
counters although the database answered (a burst was admitted twice over, once by each),
and the API refused the first writes with ``503 database_unavailable`` while it did.
Now a connection that fails is discarded and the statement retried once on a fresh one.
The tests restart the session's throwaway cluster (skipped on a server they cannot
restart).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from adapters.http.ratelimit import Decision, Limiter, Preset
from adapters.http.wiring import build_http
from adapters.postgres.http_api import PostgresCounters
from adapters.postgres.migrate import migrate
from adapters.service.bootstrap import build
from adapters.service.settings import Settings
from tests.support.http import serve_in_thread
from tests.support.pg import PostgresServer, ShutdownMode

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

MODES: list[Any] = ["immediate", "fast"]
NOW = 1_800_000_000.0
"""A fixed clock: every decision falls in one window, however long the restart takes."""


def restartable(server: PostgresServer) -> None:
    if not server.supports_restart:
        pytest.skip(f"cannot restart {server!r}")


async def burst(limiter: Limiter, requests: int) -> list[Decision]:
    """``requests`` concurrent decisions on one key."""
    decisions: list[Decision] = []

    async def one() -> None:
        decisions.append(await limiter.decide("p", "one-key"))

    async with anyio.create_task_group() as tg:
        for _ in range(requests):
            tg.start_soon(one)
    return decisions


@pytest.mark.parametrize("mode", MODES)
def test_a_burst_right_after_a_restart_is_admitted_exactly_the_limit(
    postgres_server: PostgresServer, postgres_url: str, mode: ShutdownMode
) -> None:
    restartable(postgres_server)
    migrate(postgres_url)
    limiter = Limiter(
        PostgresCounters(postgres_url), {"p": Preset("p", 30, 3600)}, clock=lambda: NOW
    )

    async def main() -> tuple[list[Decision], list[Decision]]:
        async with limiter.running():
            before = await burst(limiter, 20)  # counted in the database; connections pooled
            # The counts are committed without waiting for the disk; the WAL writer
            # flushes them within 3 x wal_writer_delay (0.6 s), before the crash.
            await anyio.sleep(1.0)
            await anyio.to_thread.run_sync(postgres_server.restart, mode)
            after = await burst(limiter, 50)
        return before, after

    before, after = anyio.run(main)
    assert sum(d.allowed for d in before) == 20
    assert {d.source for d in after} == {"database"}
    # The window survives a clean restart and a crash alike (a logged table, ADR 31):
    # 30 in all, the limit (before, memory admitted another limit's worth, and a crash
    # emptied the UNLOGGED window).
    assert sum(d.allowed for d in after) == 10
    assert not limiter.on_fallback


@pytest.mark.parametrize("mode", MODES)
def test_the_first_writes_after_a_restart_succeed(
    postgres_server: PostgresServer, postgres_url: str, tmp_path: Path, mode: ShutdownMode
) -> None:
    restartable(postgres_server)
    container = build(Settings(database_url=postgres_url, ledger_data_dir=tmp_path))
    parts = build_http(container)
    parts.access.open_allowed = True
    try:
        with serve_in_thread(parts) as running, httpx.Client(
            base_url=running.base_url, timeout=15
        ) as http:
            for _ in range(3):  # every pool holds a connection
                created = http.post("/jobs", json={"customer_id": "acme"})
                assert created.status_code == 201, created.text
                job = created.json()["job_id"]
                assert http.get(f"/jobs/{job}").status_code == 200
                assert http.get("/queue/acme").status_code == 200
            postgres_server.restart(mode)
            for _ in range(3):
                created = http.post("/jobs", json={"customer_id": "acme"})
                assert created.status_code == 201, created.text
                job = created.json()["job_id"]
                read = http.get(f"/jobs/{job}")
                assert read.status_code == 200, read.text
                queue = http.get("/queue/acme")
                assert queue.status_code == 200, queue.text
    finally:
        container.close()
