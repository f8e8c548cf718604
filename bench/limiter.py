"""Rate limiter decisions/s and exactness with 8 concurrent clients on PostgreSQL.

Eight client processes (as eight API processes would be), each with its own
:class:`~adapters.http.ratelimit.Limiter` on :class:`PostgresCounters` (the database
counters the API uses), decide for a few seconds in a closed loop: one decision in flight
per client, then 32 in flight per client (the limiter batches what is waiting). The
baseline: the same eight clients doing one ``INSERT ... ON CONFLICT DO UPDATE ...
RETURNING`` per decision (the obvious counter), with the limiter's own session settings.
Exactness: the eight clients fire 500 concurrent decisions each at one bucket whose limit
is 1,000: exactly 1,000 must be admitted.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.synchronize
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
import psycopg

from adapters.http.ratelimit import Limiter, Preset
from adapters.postgres.http_api import PostgresCounters
from adapters.postgres.migrate import migrate
from bench.common import Figure, fresh_database
from tests.support.pg import PostgresServer

CLIENTS = 8
EXACT_LIMIT = 1000
EXACT_PER_CLIENT = 500
CREATE_BASELINE = (
    "CREATE TABLE naive_counters (bucket text NOT NULL, window_start bigint NOT NULL, "
    "count bigint NOT NULL, PRIMARY KEY (bucket, window_start))"
)
UPSERT = (
    "INSERT INTO naive_counters VALUES (%s, %s, 1) ON CONFLICT (bucket, window_start) "
    "DO UPDATE SET count = naive_counters.count + 1 RETURNING count"
)
LIMITER, NAIVE = "limiter (PostgresCounters)", "one UPSERT per decision"


@dataclass(frozen=True)
class Size:
    seconds: float
    in_flight: tuple[int, ...]
    repeats: int


FULL = Size(3.0, (1, 32), 3)
QUICK = Size(0.6, (1, 32), 1)
TINY = Size(0.3, (1, 4), 1)

Result = tuple[int, float, int]  # decisions, seconds, admitted in the exactness round


def client(  # noqa: PLR0917 (a process target: positional arguments)
    url: str, mode: str, in_flight: int, seconds: float, index: int,
    ready: multiprocessing.synchronize.Barrier, out: multiprocessing.Queue[Result],
) -> None:
    """One client process: decides for ``seconds`` with ``in_flight`` decisions waiting,
    then (limiter mode) joins the exactness round."""
    presets = {"many": Preset("many", 10**9, 60), "one": Preset("one", EXACT_LIMIT, 60)}

    async def limited() -> Result:
        limiter = Limiter(PostgresCounters(url), presets)
        async with limiter.running():
            await limiter.decide("many", "warm-up")
            ready.wait(60)
            done = [0]
            end = time.monotonic() + seconds

            async def loop(k: int) -> None:
                while time.monotonic() < end:
                    await limiter.decide("many", f"client-{index}-{k % 25}")
                    done[0] += 1

            began = time.perf_counter()
            async with anyio.create_task_group() as tg:
                for k in range(in_flight):
                    tg.start_soon(loop, k)
            elapsed = time.perf_counter() - began
            ready.wait(60)
            admitted = [0]

            async def once() -> None:
                if (await limiter.decide("one", "exact")).allowed:
                    admitted[0] += 1

            async with anyio.create_task_group() as tg:
                for _ in range(EXACT_PER_CLIENT):
                    tg.start_soon(once)
        return done[0], elapsed, admitted[0]

    def naive() -> Result:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SET synchronous_commit = off")  # as PostgresCounters does
            ready.wait(60)
            done, end = 0, time.monotonic() + seconds
            began = time.perf_counter()
            while time.monotonic() < end:
                now = int(time.time())
                row = conn.execute(UPSERT, (f"client-{index}-{done % 25}", now - now % 60))
                allowed = row.fetchone()
                assert allowed is not None
                done += 1
            elapsed = time.perf_counter() - began
        ready.wait(60)
        return done, elapsed, 0

    out.put(anyio.run(limited) if mode == LIMITER else naive())


def measure(url: str, mode: str, in_flight: int, seconds: float) -> tuple[float, int]:
    """Decisions/s of ``CLIENTS`` client processes, and what the exactness round admitted."""
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(CLIENTS + 1)
    out: multiprocessing.Queue[Result] = context.Queue()
    processes = [
        context.Process(target=client, args=(url, mode, in_flight, seconds, i, ready, out))
        for i in range(CLIENTS)
    ]
    for p in processes:
        p.start()
    try:
        ready.wait(120)  # every client connected and warm
        ready.wait(seconds + 60)  # every client done with the timed loop
        results = [out.get(timeout=120) for _ in processes]
    finally:
        for p in processes:
            p.join(30)
            if p.is_alive():
                p.kill()
    decisions = sum(r[0] for r in results)
    elapsed = max(r[1] for r in results)
    return decisions / elapsed, sum(r[2] for r in results)


def run(server: PostgresServer, size: Size, log: Callable[[str], Any] = print) -> list[Figure]:
    figures: list[Figure] = []
    plan = [(LIMITER, n) for n in size.in_flight] + [(NAIVE, 1)]
    for mode, in_flight in plan:
        name = f"{mode}, {CLIENTS} clients x {in_flight} in flight"
        figure = Figure(name, "decisions/s", notes={"in_flight": str(in_flight)})
        admitted: list[int] = []
        for _ in range(size.repeats):
            with fresh_database(server, "limiter") as url:
                migrate(url)
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute(CREATE_BASELINE)
                rate, got = measure(url, mode, in_flight, size.seconds)
            figure.values.append(rate)
            admitted.append(got)
        if mode == LIMITER:
            figure.notes["admitted"] = ", ".join(str(a) for a in admitted)
            figure.notes["exact"] = str(all(a == EXACT_LIMIT for a in admitted))
        log(f"limiter: {name}: {figure.spread()} decisions/s {figure.notes}")
        figures.append(figure)
    return figures
