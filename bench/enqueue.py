"""Enqueue jobs/s: the ledger (one job per transaction, and batches) against Procrastinate's
``defer`` / ``batch_defer`` on the same server and a raw psycopg INSERT of the same event
row (the floor of what any design can do), at several client counts.

Each path runs in a fresh database, closed loop, bounded in count and time; clients are
threads of this process (Procrastinate's: asyncio tasks, its native API), the server is a
separate process on 127.0.0.1.

``python -m bench`` runs it and writes its section of docs/benchmarks.md; alone,
``python -m bench.enqueue [--quick] [--clients 1,4,16] [--only ledger,raw]`` prints the
same table (each path's median with min-max, and its ratio to Procrastinate and to the
raw INSERT of the same run) and writes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import psycopg
from psycopg import sql

from adapters.postgres.backend import EVENTS_TABLE, postgres_env
from adapters.postgres.migrate import migrate
from adapters.service.batching import BatchWriter
from adapters.service.bootstrap import utc_now
from bench import peer
from bench.common import Figure, fresh_database
from ledger.application import JobLedger
from ledger.commands import EnqueueJob
from ledger.ports.queue_store import DEFAULT_QUEUE
from tests.support.pg import PostgresServer, start_postgres

RAW_TABLE = "raw_events"
CREATE_RAW = sql.SQL(
    "CREATE TABLE {raw} (LIKE {events} INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
    "INCLUDING INDEXES)"
).format(raw=sql.Identifier(RAW_TABLE), events=sql.Identifier(EVENTS_TABLE))
ONE_EVENT = sql.SQL("SELECT topic, state FROM {events} LIMIT 1").format(
    events=sql.Identifier(EVENTS_TABLE)
)
INSERT_RAW = sql.SQL(
    "INSERT INTO {raw} (originator_id, originator_version, topic, state) VALUES (%s, 1, %s, %s)"
).format(raw=sql.Identifier(RAW_TABLE))

LEDGER_ONE, LEDGER_BATCH = "ledger, 1 job per transaction", "ledger, batches of {b}"
LEDGER_BARE = "ledger, 1 job per transaction, no outbox"
"""The event alone, no queue row: an enqueue where the transport is SQS (the dispatcher
sends the message afterwards, not timed here). The other ledger rows write each job's
queue row with its event (the outbox, ADR 151), as ``ledger serve``, ``LocalClient`` and
the HTTP API do with the local queue on PostgreSQL: the job can be claimed once the
enqueue commits, as a deferred job of Procrastinate can."""
LEDGER_GROUP = "ledger, 1 job per call, group commit"
"""Each client enqueues one job per call and waits for it to be durable, as the threads of
an application calling ``LocalClient.enqueue`` do; concurrent calls share a transaction
through its BatchWriter, which waits briefly for the callers it just answered (ADR 213;
``ledger serve``'s writer does not)."""
PEER_ONE, PEER_BATCH = "Procrastinate defer", "Procrastinate batch_defer of {b}"
RAW_ONE, RAW_BATCH = "raw INSERT, 1 per transaction", "raw INSERT, batches of {b}"


@dataclass(frozen=True)
class Size:
    clients: tuple[int, ...]
    batch: int
    seconds: float
    most: int  # jobs per run at most
    repeats: int


FULL = Size((1, 4, 16), 100, 2.0, 200_000, 3)
QUICK = Size((1, 8), 100, 0.5, 20_000, 2)
TINY = Size((1, 2), 10, 0.2, 200, 1)

CLIENT_CPU = [0.0]
"""CPU seconds per job of this process (every thread) in the last closed loop: where a
path is bound by its client, rate x this is about one CPU (python -m bench.enqueue)."""

Op = Callable[[int, int], None]
"""``op(client, count)``: enqueue ``count`` jobs (1, or a batch) from client ``client``."""


def closed_loop(clients: int, per_call: int, seconds: float, most: int, op: Op) -> float:
    """``clients`` threads calling ``op`` until ``most`` jobs or ``seconds``: jobs/s."""
    done = [0]
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def client(index: int) -> None:
        while time.monotonic() < end:
            with lock:
                if done[0] + per_call > most:
                    return
                done[0] += per_call
            op(index, per_call)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started, cpu = time.perf_counter(), time.process_time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    CLIENT_CPU[0] = (time.process_time() - cpu) / max(done[0], 1)
    return done[0] / (time.perf_counter() - started)


def ledger_rate(url: str, clients: int, batch: int, size: Size) -> float:
    return _ledger_rate(url, clients, batch, size, group=False)


def ledger_group_rate(url: str, clients: int, batch: int, size: Size) -> float:
    return _ledger_rate(url, clients, batch, size, group=True)


def ledger_bare_rate(url: str, clients: int, batch: int, size: Size) -> float:
    return _ledger_rate(url, clients, batch, size, group=False, outbox=False)


def _ledger_rate(
    url: str, clients: int, batch: int, size: Size, *, group: bool, outbox: bool = True
) -> float:
    env = {**postgres_env(url), "POSTGRES_POOL_SIZE": str(clients + 1)}
    ledger = JobLedger(env)
    if outbox:  # as build() sets it with the local queue on PostgreSQL
        migrate(url)  # the queue's table
        ledger.outbox = DEFAULT_QUEUE
    writer = BatchWriter(ledger, utc_now).start()
    try:
        ledger.execute(EnqueueJob(customer_id="warm-up"), utc_now())

        def op(_: int, count: int) -> None:
            commands = [EnqueueJob(customer_id="bench", payload={"n": i}) for i in range(count)]
            if group:
                result = writer.submit(commands[0]).result(30)
                if isinstance(result, Exception):
                    raise result
            elif count == 1:
                ledger.execute(commands[0], utc_now())
            else:
                for result in ledger.execute_batch(commands, utc_now()):
                    if isinstance(result, Exception):
                        raise result

        return closed_loop(clients, batch, size.seconds, size.most, op)
    finally:
        writer.close()
        ledger.close()


def raw_rate(url: str, clients: int, batch: int, size: Size) -> float:
    """The same row as the ledger's Enqueued event, INSERTed with psycopg."""
    JobLedger(postgres_env(url)).close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(CREATE_RAW)
        seed = JobLedger(postgres_env(url))
        seed.execute(EnqueueJob(customer_id="bench", payload={"n": 0}), utc_now())
        seed.close()
        row = conn.execute(ONE_EVENT).fetchone()
    assert row is not None
    topic, state = row
    conns = [psycopg.connect(url) for _ in range(clients)]
    try:

        def op(client: int, count: int) -> None:
            conn = conns[client]
            with conn.cursor() as cur:
                if count == 1:
                    cur.execute(INSERT_RAW, (uuid4(), topic, state))
                else:
                    cur.executemany(INSERT_RAW, [(uuid4(), topic, state) for _ in range(count)])
            conn.commit()

        return closed_loop(clients, batch, size.seconds, size.most, op)
    finally:
        for conn in conns:
            conn.close()


def peer_rate(url: str, clients: int, batch: int, size: Size) -> float:
    """Procrastinate's own API: ``clients`` asyncio tasks deferring no-op jobs."""
    peer.apply_schema(url)

    async def run() -> float:
        app = peer.make_app(url, clients + 1)
        async with app.open_async():
            task = app.tasks[peer.TASK]
            await task.defer_async(n=-1)
            done = [0]
            end = time.monotonic() + size.seconds

            async def client() -> None:
                while time.monotonic() < end and done[0] + batch <= size.most:
                    done[0] += batch
                    if batch == 1:
                        await task.defer_async(n=done[0])
                    else:
                        jobs: list[dict[str, Any]] = [{"n": i} for i in range(batch)]
                        await task.batch_defer_async(*jobs)

            started, cpu = time.perf_counter(), time.process_time()
            await asyncio.gather(*(client() for _ in range(clients)))
            CLIENT_CPU[0] = (time.process_time() - cpu) / max(done[0], 1)
            return done[0] / (time.perf_counter() - started)

    return asyncio.run(run())


Path = Callable[[str, int, int, Size], float]


def run(
    server: PostgresServer, size: Size, log: Callable[[str], Any] = print,
    only: tuple[str, ...] = (),
) -> list[Figure]:
    """Every path at every client count, ``size.repeats`` times each on fresh databases
    (only the paths whose name starts with one of ``only``, when given)."""
    b = size.batch
    paths: list[tuple[str, Path, int]] = [
        (LEDGER_ONE, ledger_rate, 1),
        (LEDGER_BARE, ledger_bare_rate, 1),
        (LEDGER_GROUP, ledger_group_rate, 1),
        (LEDGER_BATCH.format(b=b), ledger_rate, b),
        (PEER_ONE, peer_rate, 1),
        (PEER_BATCH.format(b=b), peer_rate, b),
        (RAW_ONE, raw_rate, 1),
        (RAW_BATCH.format(b=b), raw_rate, b),
    ]
    if only:
        paths = [p for p in paths if p[0].lower().startswith(only)]
    figures: list[Figure] = []
    for clients in size.clients:
        # the repeats alternate between the paths (a round of every path, then the next),
        # so a machine whose load drifts weighs on each path alike
        row = [Figure(name, "jobs/s", notes={"clients": str(clients)}) for name, _, _ in paths]
        cpu: list[list[float]] = [[] for _ in paths]
        for _ in range(size.repeats):
            for (_, path, batch), figure, used in zip(paths, row, cpu, strict=True):
                with fresh_database(server, "enqueue") as url:
                    figure.values.append(path(url, clients, batch, size))
                used.append(CLIENT_CPU[0])
        for figure, used in zip(row, cpu, strict=True):
            figure.notes["client_cpu_us"] = f"{statistics.median(used) * 1e6:.1f}"
            log(f"enqueue: {figure.name}, {clients} clients: {figure.spread()} jobs/s")
        figures.extend(row)
    return figures


def at(figures: list[Figure], name: str, clients: int) -> Figure:
    for figure in figures:
        if figure.name == name and figure.notes["clients"] == str(clients):
            return figure
    raise KeyError((name, clients))


def table(figures: list[Figure], batch: int) -> list[str]:
    """Markdown rows: each figure with its ratio to Procrastinate's and to the raw INSERT's
    rate at the same client count and batch size (when they ran)."""
    lines = ["| path | clients | jobs/s | vs Procrastinate | vs raw INSERT | client CPU per job |",
             "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for f in figures:
        clients = int(f.notes["clients"])
        batched = "batch" in f.name
        ratios = []
        for base in (PEER_BATCH.format(b=batch) if batched else PEER_ONE,
                     RAW_BATCH.format(b=batch) if batched else RAW_ONE):  # fmt: skip
            try:
                ratios.append(f"{f.median / at(figures, base, clients).median:.2f}x")
            except KeyError:
                ratios.append("")
        cpu = f.notes.get("client_cpu_us", "")
        lines.append(
            f"| {f.name} | {clients} | {f.spread()} | {ratios[0]} | {ratios[1]} | {cpu} µs |"
        )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Enqueue jobs/s: ledger, Procrastinate, raw")
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--clients", help="client counts, e.g. 1,4,16")
    parser.add_argument("--seconds", type=float, help="closed loop per run")
    parser.add_argument("--repeats", type=int, help="runs per figure")
    parser.add_argument("--only", default="", help="path name prefixes, e.g. ledger,raw")
    args = parser.parse_args(argv)
    size = QUICK if args.quick else Size((1, 4, 16), 100, 1.5, 200_000, 3)
    size = Size(
        tuple(int(c) for c in args.clients.split(",")) if args.clients else size.clients,
        size.batch, args.seconds or size.seconds, size.most, args.repeats or size.repeats,
    )
    only = tuple(p.strip().lower() for p in args.only.split(",") if p.strip())
    with start_postgres() as server:
        figures = run(server, size, only=only)
    load = os.getloadavg()
    print(f"\nload average {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f} on {os.cpu_count()} CPUs")
    print("\n".join(table(figures, size.batch)))


if __name__ == "__main__":
    main()
