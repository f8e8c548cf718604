"""The limiter's counters in the database: exact under concurrency (threads, processes and
two API servers sharing one database), old windows cleaned up, and a database that stops
mid-run: ``/health`` says 503, the limiter falls back to memory (logged once), and all
recovers when the database returns, without a restart."""

from __future__ import annotations

import logging
import multiprocessing
import time
from collections.abc import Sequence
from pathlib import Path

import anyio
import httpx
import pytest

from adapters.http.ratelimit import CounterStore, Hit, Limiter, Preset
from adapters.http.wiring import build_http
from adapters.postgres.http_api import PostgresCounters
from adapters.postgres.migrate import migrate
from adapters.service.bootstrap import build
from adapters.service.settings import Settings
from adapters.sqlite.http_api import SqliteCounters
from adapters.sqlite.migrate import migrate as migrate_sqlite
from tests.support.http import serve_in_thread, wait_for
from tests.support.pg import PostgresServer

PRESETS = {"p": Preset("p", 150, 60)}


def _fresh_window(margin: float = 3.0) -> None:
    left = 60 - time.time() % 60
    if left < margin:
        time.sleep(left + 0.05)


async def _decide_all(limiters: Sequence[Limiter], requests: int) -> list[int]:
    """``requests`` concurrent decisions spread over ``limiters``; the remaining counts of
    the admitted ones."""
    remaining: list[int] = []

    async def one(limiter: Limiter) -> None:
        decision = await limiter.decide("p", "shared")
        if decision.allowed:
            assert decision.source == "database"
            remaining.append(decision.remaining)

    async with anyio.create_task_group() as tg:
        for limiter in limiters:
            await tg.start(_run, limiter)
        async with anyio.create_task_group() as requests_tg:
            for index in range(requests):
                requests_tg.start_soon(one, limiters[index % len(limiters)])
        tg.cancel_scope.cancel()
    return remaining


async def _run(limiter: Limiter, *, task_status: anyio.abc.TaskStatus[None]) -> None:
    async with limiter.running():
        task_status.started()
        await anyio.sleep_forever()


@pytest.mark.postgres
def test_n_concurrent_requests_against_limit_l_admit_exactly_l_on_postgres(
    postgres_url: str,
) -> None:
    migrate(postgres_url)
    _fresh_window()
    limiters = [Limiter(PostgresCounters(postgres_url), PRESETS) for _ in range(3)]
    remaining = anyio.run(_decide_all, limiters, 600)
    assert len(remaining) == 150
    assert sorted(remaining) == list(range(150))  # each slot handed out exactly once


def test_n_concurrent_requests_against_limit_l_admit_exactly_l_on_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    migrate_sqlite(path)
    _fresh_window()
    limiters = [Limiter(SqliteCounters(path), PRESETS) for _ in range(2)]
    remaining = anyio.run(_decide_all, limiters, 400)
    assert sorted(remaining) == list(range(150))


def _process(url: str, requests: int, results: multiprocessing.Queue[int]) -> None:
    limiters = [Limiter(PostgresCounters(url), PRESETS)]
    results.put(len(anyio.run(_decide_all, limiters, requests)))


@pytest.mark.postgres
def test_processes_share_the_counters(postgres_url: str) -> None:
    migrate(postgres_url)
    _fresh_window(margin=8.0)
    context = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue[int] = context.Queue()
    processes = [
        context.Process(target=_process, args=(postgres_url, 120, results)) for _ in range(3)
    ]
    for process in processes:
        process.start()
    admitted = [results.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(30)
        assert process.exitcode == 0
    assert sum(admitted) == 150


@pytest.mark.postgres
def test_two_api_servers_on_one_database_admit_exactly_the_limit(
    postgres_url: str, tmp_path: Path
) -> None:
    container = build(Settings(database_url=postgres_url, ledger_data_dir=tmp_path))
    first, second = build_http(container), build_http(container)
    first.access.open_allowed = second.access.open_allowed = True

    async def hammer(urls: list[str]) -> list[int]:
        async with httpx.AsyncClient(timeout=30) as http:
            codes: list[int] = []

            async def get(url: str) -> None:
                codes.append((await http.get(f"{url}/queue/acme")).status_code)

            async with anyio.create_task_group() as tg:
                for index in range(160):
                    tg.start_soon(get, urls[index % 2])
            return codes

    try:
        with serve_in_thread(first) as one, serve_in_thread(second) as two:
            _fresh_window()
            codes = anyio.run(hammer, [one.base_url, two.base_url])
    finally:
        container.close()
    assert codes.count(200) == 100
    assert codes.count(429) == 60


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_old_windows_are_cleaned_up(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    store: CounterStore
    if backend == "postgres":
        url = str(request.getfixturevalue("postgres_url"))
        migrate(url)
        store = PostgresCounters(url)
    else:
        migrate_sqlite(tmp_path / "ledger.sqlite3")
        store = SqliteCounters(tmp_path / "ledger.sqlite3")

    async def scenario() -> tuple[int, list[int]]:
        now = int(time.time())
        await store.hit([
            Hit("old", now - 600, now - 540, 5, 1), Hit("current", now - now % 60, now + 60, 5, 2)
        ])
        removed = await store.cleanup(now)
        again = await store.hit([
            Hit("old", now - 600, now - 540, 5, 1), Hit("current", now - now % 60, now + 60, 5, 1)
        ])
        await store.close()
        return removed, [c.admitted for c in again]

    removed, admitted = anyio.run(scenario)
    assert removed == 1
    assert admitted == [1, 3]  # the old window started again; the current one kept counting


@pytest.mark.postgres
def test_database_stopped_mid_run_then_back_without_restart(
    postgres_server: PostgresServer,
    postgres_url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if not postgres_server.supports_restart:
        pytest.skip("this PostgreSQL cannot be stopped by the tests")
    container = build(Settings(database_url=postgres_url, ledger_data_dir=tmp_path))
    parts = build_http(container)
    parts.access.open_allowed = True
    caplog.set_level(logging.WARNING, logger="adapters.http.ratelimit")
    try:
        with serve_in_thread(parts) as running, httpx.Client(
            base_url=running.base_url, timeout=15
        ) as http:
            assert http.get("/health").status_code == 200
            assert http.post("/jobs", json={"customer_id": "acme"}).status_code == 201
            postgres_server.stop()
            try:
                wait_for(lambda: http.get("/health").status_code == 503, timeout=15)
                down = http.get("/health").json()
                assert down["status"] == "unhealthy"
                assert down["services"]["database"]["status"] == "down"
                for _ in range(5):  # decided on in-memory counters: still limited
                    queue = http.get("/queue/acme")
                    assert queue.status_code == 503
                    assert queue.headers["x-ratelimit-limit"] == "100"
                enqueue = http.post("/jobs", json={"customer_id": "acme"})
                assert enqueue.status_code == 503
                assert enqueue.headers["content-type"].startswith("application/problem+json")
                assert http.get("/health").json()["services"]["rate_limiter"]["status"] == (
                    "fallback"
                )
                assert http.get("/health/live").status_code == 200
                assert http.get("/health/ready").status_code == 503
            finally:
                postgres_server.start()
            wait_for(lambda: http.get("/health").status_code == 200, timeout=20)
            wait_for(
                lambda: http.get("/health").json()["services"]["rate_limiter"]["status"] == "up",
                timeout=10,
            )
            assert http.get("/queue/acme").status_code == 200
            assert http.post("/jobs", json={"customer_id": "acme"}).status_code == 201
    finally:
        container.close()
    fallbacks = [r for r in caplog.records if "in-memory counters" in r.getMessage()]
    assert len(fallbacks) == 1, [r.getMessage() for r in caplog.records]
    assert any("answers again" in r.getMessage() for r in caplog.records)
