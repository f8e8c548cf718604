"""HTTP API benchmark (issue 5): heartbeats through the real server, /health under load,
and the rate limiter, on PostgreSQL with durable commits.

``python -m bench.http_api [--quick] [--no-profile] [--processes N]`` starts a throwaway
PostgreSQL (or uses ``DATABASE_URL``), runs ``ledger serve --api-only [--processes N]`` as
its own process on 127.0.0.1, and loads it from this process (``bench.http_load``) while
a third process polls ``/health``.
Baselines run in the same run: one ``save()`` per heartbeat (``JobLedger.execute`` of
one command, sequentially).
Figures go into docs/benchmarks.md under "## HTTP API (issue 5)", leaving the file's
other sections alone. Every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID, uuid4

import anyio
import msgspec
import psycopg

from adapters.http.ratelimit import Limiter, Preset
from adapters.postgres.backend import postgres_env
from adapters.postgres.http_api import PostgresCounters, PostgresKeyStore
from adapters.postgres.migrate import migrate
from adapters.service.bootstrap import utc_now
from bench.http_load import (
    Connection,
    Limits,
    Load,
    Phase,
    busy_cpu_seconds,
    drive,
    encode,
    gc_pauses,
    gc_summary,
    health_prober,
    pct,
    server_cpu_seconds,
)
from ledger.access import Role, new_key
from ledger.application import JobLedger
from ledger.commands import ClaimJob, EnqueueJob, RecordHeartbeat
from tests.support.pg import PostgresServer, start_postgres

SECTION = "## HTTP API (issue 5)"
DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
ROOT = Path(__file__).resolve().parents[1]
DURABILITY = (
    "SELECT name, setting FROM pg_settings WHERE name = ANY(%s) ORDER BY name"
)
DURABILITY_SETTINGS = ["fsync", "synchronous_commit", "full_page_writes"]


@dataclass(frozen=True)
class Size:
    jobs: int
    seconds: float
    max_requests: int
    connections: int
    batch: int
    naive_seconds: float
    naive_max: int
    limiter_seconds: float
    repeats: int


FULL = Size(6400, 6.0, 400_000, 64, 100, 4.0, 5_000, 4.0, 3)
QUICK = Size(3200, 2.5, 100_000, 32, 100, 1.0, 1_000, 1.0, 1)
"""Jobs: one batch of 100 per connection, so no two connections heartbeat one job."""


# -- the server and its database -----------------------------------------------------------------


@dataclass
class Served:
    url: str
    host: str
    port: int
    key: str
    process: subprocess.Popen[bytes]
    jobs: list[UUID]
    processes: int = 1
    kept: list[socket.socket] = field(default_factory=list)
    """The load's connections, open for the whole run: connection ``k`` carries the same
    slice of the jobs in every phase, as a worker keeps its connection and its jobs."""
    spread: Counter[str] = field(default_factory=Counter)
    """How many of ``kept`` each API process accepted (by its ``X-Served-By``)."""

    @property
    def api_pids(self) -> list[int]:
        """The processes that answer requests (the children under ``--processes N``)."""
        return _children(self.process.pid) if self.processes > 1 else [self.process.pid]


def _children(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in found.read_text().split()] if found.exists() else []


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of ``pid`` and its live descendants (a parent and its API children)."""
    return server_cpu_seconds(pid) + sum(tree_cpu_seconds(c) for c in _children(pid))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serving(
    server: PostgresServer, size: Size, with_runner: bool, processes: int = 1,
    root: Path | None = None,
) -> Iterator[Served]:
    """``ledger serve`` on a fresh database; ``root``: the server's code from that checkout
    instead (another commit's work tree, to compare two commits in one run)."""
    name = f"bench_http_{uuid4().hex[:10]}"
    url = server.create_database(name)
    data = Path(tempfile.mkdtemp(prefix="bench-http-"))
    process: subprocess.Popen[bytes] | None = None
    runner: subprocess.Popen[bytes] | None = None
    served: Served | None = None
    try:
        migrate(url)
        key, record = new_key(Role.WORKER, None, "bench", utc_now())
        PostgresKeyStore(url).add(record)
        jobs = start_jobs(url, size.jobs)
        port = free_port()
        env = {
            **os.environ, "DATABASE_URL": url, "LEDGER_DATA_DIR": str(data),
            "RATE_LIMIT_WORKER_PER_MINUTE": "100000000",
        }
        ledger = [shutil.which("ledger") or "ledger"]
        if root is not None:
            ledger = [sys.executable, "-c", "from adapters.cli.app import main; main()"]
            env["PYTHONPATH"] = str(root)
        process = subprocess.Popen(
            [*ledger, "serve", "--api-only", "--host", "127.0.0.1", "--port", str(port),
             "--log-level", "warning", "--processes", str(processes)],
            env=env, cwd=root or ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        if with_runner:
            runner = subprocess.Popen(
                [*ledger, "projections", "run"], env=env, cwd=ROOT, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
        wait_ready(port, process)
        served = Served(url, "127.0.0.1", port, key, process, jobs, processes)
        warm_up(served, size)
        served.kept = keep_connections(served, size)  # after: their processes hold the jobs
        yield served
    finally:
        for sock in served.kept if served is not None else []:
            sock.close()
        if runner is not None:
            runner.send_signal(signal.SIGTERM)
            try:
                runner.wait(30)
            except subprocess.TimeoutExpired:
                runner.kill()
        if process is not None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
            if process.stderr is not None:
                process.stderr.close()
        shutil.rmtree(data, ignore_errors=True)
        server.drop_database(name)


def wait_ready(port: int, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            said = process.stderr.read().decode(errors="replace") if process.stderr else ""
            tail = " | ".join(said.strip().splitlines()[-3:])
            raise RuntimeError(f"ledger serve exited with {process.returncode}: {tail}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(encode("GET", "/health/live"))
                if sock.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("ledger serve did not answer")


def keep_connections(served: Served, size: Size) -> list[socket.socket]:
    """The load's ``size.connections`` connections, each warmed with one request of its
    own slice of the jobs (so the process that accepted it holds them, as a worker's
    heartbeats make its process hold its jobs)."""
    kept: list[socket.socket] = []
    make = batch_requests(served, size.batch, size.connections)
    for k in range(size.connections):
        sock = socket.create_connection((served.host, served.port), timeout=60)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        kept.append(sock)
        sock.sendall(make(k))
        stream = sock.makefile("rb")
        status = int(stream.readline()[9:12])
        length = 0
        while (line := stream.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
            elif line.lower().startswith(b"x-served-by:"):
                served.spread[line.split(b":")[1].strip().decode()] += 1
        stream.read(length)
        stream.close()
        if status != 200:
            raise RuntimeError(f"warm-up heartbeats answered {status}")
    return kept


def warm_up(served: Served, size: Size) -> None:
    """One heartbeat for every job, so the server's ledger holds the jobs in its cache as
    it does in steady state (a worker heartbeats the same jobs again and again); with
    several API processes, over several connections so that each process's cache is warm
    (each connection stays with the process that accepted it)."""
    make = batch_requests(served, size.batch)

    async def one() -> None:
        conn = await Connection.open(served.host, served.port)
        try:
            for n in range(0, len(served.jobs), size.batch):
                status, body = await conn.send(make(n // size.batch))
                if status != 200:
                    raise RuntimeError(f"warm-up heartbeats answered {status}: {body[:200]!r}")
        finally:
            conn.close()

    async def run() -> None:
        async with anyio.create_task_group() as tg:
            for _ in range(1 if served.processes == 1 else 4 * served.processes):
                tg.start_soon(one)

    anyio.run(run)


def start_jobs(url: str, count: int) -> list[UUID]:
    """``count`` jobs, each claimed (attempt 1) by worker ``bench``."""
    ledger = JobLedger(postgres_env(url))
    try:
        ids: list[UUID] = []
        for start in range(0, count, 500):
            batch = [EnqueueJob(customer_id="bench") for _ in range(min(500, count - start))]
            outcomes = ledger.execute_batch(batch, utc_now())
            new = [o.job_id for o in outcomes if not isinstance(o, Exception)]
            ledger.execute_batch([ClaimJob(job_id=j, worker_id="bench") for j in new], utc_now())
            ids += new
        return ids
    finally:
        ledger.close()


# -- load ------------------------------------------------------------------------------------


def measure_load(served: Served, size: Size, phase: Phase) -> Load:
    load = Load(phase.name)
    context = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue[tuple[list[float], dict[int, int]]] = context.Queue()
    prober = context.Process(
        target=health_prober, args=(served.port, size.seconds, 0.01, results)
    )
    prober.start()
    cpu = tree_cpu_seconds(served.process.pid)
    api = {pid: server_cpu_seconds(pid) for pid in served.api_pids}
    own = time.process_time()
    machine_busy = busy_cpu_seconds()
    limits = Limits(size.connections, size.seconds, size.max_requests)
    several = served.processes > 1  # /metrics is the answering process's: no sum
    pauses = {} if several else gc_pauses(served.port)
    anyio.run(drive, (served.host, served.port), phase, load, limits, served.kept)
    load.gc = ("not summed (each API process has its own /metrics)" if several
               else gc_summary(pauses, gc_pauses(served.port)))
    load.server_cpu = (tree_cpu_seconds(served.process.pid) - cpu) / load.seconds
    load.api_cpu = [(_cpu_or(pid, spent) - spent) / load.seconds for pid, spent in api.items()]
    load.client_cpu = (time.process_time() - own) / load.seconds
    load.machine_cpu = (busy_cpu_seconds() - machine_busy) / load.seconds
    latencies, statuses = results.get(timeout=size.seconds + 60)
    prober.join(30)
    load.health, load.health_statuses = latencies, Counter(statuses)
    return load


def _cpu_or(pid: int, spent: float) -> float:
    """``pid``'s CPU seconds now, or ``spent`` when it is gone (a child restarted)."""
    try:
        return server_cpu_seconds(pid)
    except (FileNotFoundError, ProcessLookupError):
        return spent


def api_cpu_note(load: Load) -> str:
    """`` (71% + 70%)``: each API process's CPU, when there are several."""
    if len(load.api_cpu) < 2:
        return ""
    return " (" + " + ".join(f"{x:.0%}" for x in load.api_cpu) + ")"


def single_requests(served: Served, connections: int) -> Callable[[int], bytes]:
    """One heartbeat per request; connection ``k`` (``n % connections``, see
    :class:`Phase`) heartbeats its own slice of the jobs in turn, as a worker does."""
    body = b'{"worker_id":"bench","attempt":1}'
    encoded = [
        encode("POST", f"/jobs/{job}/heartbeat", body, served.key) for job in served.jobs
    ]
    share = max(1, len(encoded) // connections)

    def make(n: int) -> bytes:
        k, turn = n % connections, n // connections
        return encoded[(k * share + turn % share) % len(encoded)]

    return make


def batch_requests(served: Served, batch: int, connections: int = 1) -> Callable[[int], bytes]:
    """``batch`` heartbeats per request; connection ``k`` sends the batches of its own
    slice of the jobs (whole batches when there are ``connections x batch`` jobs)."""
    jobs = served.jobs
    encoded = []
    for start in range(0, len(jobs), batch):
        chunk = [{"job_id": str(j), "attempt": 1} for j in jobs[start:start + batch]]
        body = msgspec.json.encode({"worker_id": "bench", "jobs": chunk})
        encoded.append(encode("POST", "/heartbeats", body, served.key))
    share = max(1, len(encoded) // connections)

    def make(n: int) -> bytes:
        k, turn = n % connections, n // connections
        return encoded[(k * share + turn % share) % len(encoded)]

    return make


# -- baselines -------------------------------------------------------------------------------


def naive(served: Served, size: Size) -> Load:
    """One ``save()`` per heartbeat: ``execute`` of one command at a time."""
    load = Load("one save() per heartbeat (1 thread, no HTTP)")
    ledger = JobLedger(postgres_env(served.url))
    try:
        jobs = served.jobs
        for start in range(0, len(jobs), 500):  # load every job once (steady state: cached)
            ledger.execute_batch([
                RecordHeartbeat(job_id=j, attempt=1, worker_id="bench")
                for j in jobs[start:start + 500]
            ], utc_now())
        end = time.monotonic() + size.naive_seconds
        started = time.perf_counter()
        while time.monotonic() < end and load.heartbeats < size.naive_max:
            job = jobs[load.heartbeats % len(jobs)]
            t = time.perf_counter()
            ledger.execute(RecordHeartbeat(job_id=job, attempt=1, worker_id="bench"), utc_now())
            load.latencies.append(time.perf_counter() - t)
            load.heartbeats += 1
        load.seconds = time.perf_counter() - started
        load.requests = load.heartbeats
    finally:
        ledger.close()
    return load


@dataclass
class LimiterRun:
    decisions: int
    seconds: float
    exact: bool
    admitted: int
    limit: int
    batches: int

    @property
    def rate(self) -> float:
        return self.decisions / self.seconds


def limiter_rate(url: str, seconds: float) -> LimiterRun:
    """Decisions/s of two limiters (as two API processes would) on one database, with
    2,000 requests in flight, then an exactness round: 5,000 concurrent against 1,000."""
    presets = {"many": Preset("many", 10**9, 60), "one": Preset("one", 1000, 60)}

    async def scenario() -> LimiterRun:
        limiters = [Limiter(PostgresCounters(url), presets) for _ in range(2)]
        done = [0]
        async with limiters[0].running(), limiters[1].running():
            end = time.monotonic() + seconds

            async def client(index: int) -> None:
                limiter = limiters[index % 2]
                while time.monotonic() < end:
                    await limiter.decide("many", f"subject-{index % 200}")
                    done[0] += 1

            started = time.perf_counter()
            async with anyio.create_task_group() as tg:
                for index in range(2000):
                    tg.start_soon(client, index)
            elapsed = time.perf_counter() - started
            admitted = [0]

            async def once(index: int) -> None:
                if (await limiters[index % 2].decide("one", "exact")).allowed:
                    admitted[0] += 1

            async with anyio.create_task_group() as tg:
                for index in range(5000):
                    tg.start_soon(once, index)
            batches = limiters[0].batches + limiters[1].batches
        return LimiterRun(done[0], elapsed, admitted[0] == 1000, admitted[0], 1000, batches)

    return anyio.run(scenario)


# -- profile ------------------------------------------------------------------------------------


def profile(pid: int, seconds: float) -> list[tuple[str, float]]:
    """Where the server's CPU goes (py-spy, running frames only): per thread, its share of
    the samples, then the code areas the thread's own time is in."""
    spy = shutil.which("py-spy")
    if spy is None:
        return []
    out = Path(tempfile.mkdtemp()) / "profile.txt"
    result = subprocess.run(
        [spy, "record", "--pid", str(pid), "--duration", str(max(1, int(seconds))),
         "--format", "raw", "--output", str(out), "--nonblocking", "--threads",
         "--rate", "200"],
        capture_output=True, text=True, check=False, timeout=seconds + 60,
    )  # fmt: skip
    if result.returncode != 0 or not out.exists():
        return []
    threads: Counter[str] = Counter()
    areas: dict[str, Counter[str]] = {}
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        thread = _thread_name(frames[0].split(":", 1)[-1].strip())
        n = int(count)
        total += n
        threads[thread] += n
        areas.setdefault(thread, Counter())[_area(frames[1:], frames[-1])] += n
    shutil.rmtree(out.parent, ignore_errors=True)
    found = []
    for thread, n in threads.most_common(4):
        top = areas[thread].most_common(5)
        found.append((
            f"{thread} {n / total:.0%} of samples: "
            + ", ".join(f"{name} {m / n:.0%}" for name, m in top), n / total
        ))
    return found


def _thread_name(name: str) -> str:
    if name == "MainThread":
        return "event loop thread"
    if name.startswith("ledger-batch-writer"):
        return "batch writer thread"
    return "other threads" if name else "unnamed thread"


AREAS = [
    ("psycopg", "PostgreSQL driver (psycopg)"),
    ("eventsourcing", "eventsourcing (mapper, recorder, aggregates)"),
    ("ledger/", "ledger decisions (job model, application)"),
    ("msgspec", "msgspec"),
    ("litestar", "Litestar (routing, responses)"),
    ("uvicorn", "uvicorn (HTTP parsing, transport)"),
    ("h11", "uvicorn (HTTP parsing, transport)"),
    ("httptools", "uvicorn (HTTP parsing, transport)"),
    ("asyncio", "asyncio event loop"),
    ("anyio", "anyio"),
    ("adapters/http", "job-ledger HTTP layer (auth, limiter, handlers)"),
    ("adapters/", "job-ledger adapters"),
    ("threading", "threads (waiting)"),
    ("concurrent", "threads (waiting)"),
]


def _area(frames: list[str], leaf: str) -> str:
    for needle, name in AREAS:
        if needle in leaf:
            return name
    for frame in reversed(frames):
        for needle, name in AREAS:
            if needle in frame:
                return f"{name} (via other code)"
    return "other"


# -- report ----------------------------------------------------------------------------------------


def machine(server: PostgresServer) -> list[str]:
    with psycopg.connect(server.url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
        pg = str(row[0]) if row else "?"
        rows = conn.execute(DURABILITY, (DURABILITY_SETTINGS,)).fetchall()
    kind = "DATABASE_URL" if os.environ.get("DATABASE_URL") else type(server).__name__
    return [
        f"- Machine: {os.cpu_count()} CPUs shared by the server, its PostgreSQL, the load "
        "generator and the /health prober; Python "
        f"{sys.version.split()[0]}, PostgreSQL {pg} ({kind}: "
        + ", ".join(f"{n}={v}" for n, v in rows) + "); the CPU column says how busy the "
        "machine was (200% = both CPUs), other work on it included; load average "
        + "/".join(f"{x:.2f}" for x in os.getloadavg()) + " when the run began",
    ]


def row(load: Load, baseline: float) -> str:
    others = {k: v for k, v in load.statuses.items() if k != 200}
    return (
        f"| {load.name} | {load.rate:,.0f} | {load.rate / baseline:.1f}x | "
        f"{load.requests / load.seconds:,.0f} | {pct(load.latencies, 0.5):.1f} | "
        f"{pct(load.latencies, 0.99):.1f}{_range(load.p99_runs, 1)} | "
        f"{load.statuses.get(200, 0):,} ok{_others(others)} | "
        f"{pct(load.health, 0.5):.2f} / {pct(load.health, 0.99):.2f}"
        f"{_range(load.health_p99_runs, 2)} "
        f"({len(load.health):,}{_others(dict(load.health_statuses), skip=200)}) | "
        f"{load.server_cpu:.0%}{api_cpu_note(load)} / {load.machine_cpu:.0%} |"
    )


def _range(values: list[float], digits: int) -> str:
    if len(values) < 2:
        return ""
    return f" ({min(values):.{digits}f}-{max(values):.{digits}f})"


def _others(statuses: dict[int, int], skip: int | None = None) -> str:
    rest = {k: v for k, v in statuses.items() if k != skip}
    return "".join(f", {v:,} x {k}" for k, v in sorted(rest.items()))


@dataclass
class Results:
    info: list[str]
    loads: list[Load]
    base: Load
    limiter: LimiterRun
    hot: list[tuple[str, float]]
    with_runner: bool = False
    processes: int = 1
    spread: str = ""


def report(results: Results, size: Size) -> str:
    command = " ".join(["python -m bench.http_api", *sys.argv[1:]])
    loads, base, limiter = results.loads, results.base, results.limiter
    single = loads[0]
    verdict = "exact" if limiter.exact else "NOT EXACT"
    lines = [
        SECTION, "",
        f"Produced by `{command}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: `ledger serve "
        + ("--api-only` (one process, as compose.yaml runs the API)" if results.processes == 1
           else f"--api-only --processes {results.processes}` ({results.processes} API "
           "processes on one port, ADR 160; the CPU column adds them up)")
        + (" beside `ledger projections run` (feeding the views /health reads, on the same "
           "2 CPUs)" if results.with_runner else
           " alone (no projection runner: /health reads views that lag; `--with-runner` "
           "adds one on the same 2 CPUs)")
        + ", on PostgreSQL with durable commits; load from another process on "
        f"127.0.0.1 ({size.connections} keep-alive connections, {size.seconds:g} s per "
        f"phase, each phase run {size.repeats} times: the row is the run with the median "
        "p99, with the range of p99 over the runs; after one heartbeat per job so the "
        "server's job cache is warm); a third "
        "process GETs `/health` every 10 ms during each phase. Every request carries a "
        "worker API key and passes the rate limiter (database counters). Open-loop phases "
        "send each request when it is due and time it from then.", "",
        *results.info, *([results.spread] if results.spread else []), "",
        "| load | heartbeats/s | vs one save() per heartbeat | requests/s | p50 ms | p99 ms "
        "| answers | /health p50 / p99 ms (probes) | CPU server / machine |",
        "|---|---:|---:|---:|---:|---:|---|---|---:|",
        *(row(load, base.rate) for load in loads),
        f"| {base.name} | {base.rate:,.0f} | 1.0x | | {pct(base.latencies, 0.5):.1f} | "
        f"{pct(base.latencies, 0.99):.1f} | | | |",
        "",
        "Rate limiter alone (two limiters as two API processes, 2,000 requests in flight, "
        f"200 buckets): **{limiter.rate:,.0f} decisions/s** ({limiter.decisions:,} in "
        f"{limiter.seconds:.1f} s, {limiter.batches:,} statements); exactness: 5,000 "
        f"concurrent requests against a limit of {limiter.limit:,} admitted "
        f"**{limiter.admitted:,}** ({verdict}).",
        "", "Reading:", "",
        *_verdicts(results),
        "- Offered 5,000/s, an open-loop phase does 5,000/s; its \"vs\" column is that rate "
        "over the baseline, not a capacity. The closed-loop rows are the capacities.",
        ("- The server is one Python process: HTTP parsing, routing, the key check, the "
         "limiter, body decoding (event loop thread) and the ledger's decisions and encoding "
         "(batch writer thread) share one GIL. " if results.processes == 1 else
         f"- The server is {results.processes} API processes on one port (ADR 160), each "
         "with its own GIL, batch writer and limiter (the limiter's counters are shared in "
         "the database, so its decisions stay exact). ")
        + "Requests of many heartbeats amortise the per-request work; one heartbeat per "
        f"request is bound by it (the server's CPU is at {single.server_cpu:.0%} of a core "
        f"there, {_cpu_per_request(single)} per request). `/health` answers from memory "
        "(its check runs in the background once a second), so its latency under load is the "
        "event loop waiting for the GIL, not the database.",
        "- Garbage collector pauses per phase (from `jobledger_gc_pause_seconds`): "
        + "; ".join(f"{x.name.split(',')[0]}: {x.gc}" for x in loads) + ".",
    ]
    if results.hot:
        lines.append(
            "- Where the server's CPU goes during the one-heartbeat-per-request phase (py-spy "
            "in an extra run of it, not counted; samples of running frames, by thread, own "
            "time by code area): "
            + "; ".join(name for name, _ in results.hot) + "."
        )
    return "\n".join([*lines, ""])


FRESH_NOTE = ("- `--fresh-connections`: every phase opens new connections, so with several "
              "API processes a connection's jobs may land on another process's cache at "
              "each phase (ADR 181)")


def spread_note(served: Served) -> str:
    """How the kept connections fell on the API processes (none with one process)."""
    if served.processes == 1 or not served.spread:
        return ""
    counts = sorted(served.spread.values(), reverse=True)
    return (f"- Connections per API process: {' / '.join(map(str, counts))} of "
            f"{sum(counts)} (each kept for the whole run, as a worker keeps its own, so a "
            "connection's jobs stay in one process's cache; ADR 181)")


def _cpu_per_request(load: Load) -> str:
    """The server's CPU time per request: what more processes divide, not remove."""
    if not load.requests:
        return "n/a"
    return f"{load.server_cpu * load.seconds / load.requests * 1000:.3f} ms of CPU"


def _verdicts(results: Results) -> list[str]:
    """One line per bar of SPEC.md: met or missed, with the figure."""
    single, batch, open_batch, open_small = results.loads
    base, limiter = results.base, results.limiter

    def mark(ok: bool) -> str:
        return "met" if ok else "MISSED"

    p99_big, p99_small = pct(open_batch.latencies, 0.99), pct(open_small.latencies, 0.99)
    health = max(pct(open_batch.health, 0.99), pct(open_small.health, 0.99))
    capacity = batch.rate / base.rate
    return [
        f"- 5,000 heartbeats/s with p99 < 50 ms: {mark(p99_big < 50)} in requests of "
        f"{batch.heartbeats // max(batch.requests, 1)} (p99 {p99_big:.1f} ms); "
        f"{mark(p99_small < 50)} in requests of 10 (p99 {p99_small:.1f} ms); "
        f"{mark(single.rate >= 5000)} with one heartbeat per request, which saturates at "
        f"{single.rate:,.0f}/s (p99 {pct(single.latencies, 0.99):.1f} ms).",
        f"- At least 10x one save() per heartbeat ({base.rate:,.0f}/s): {mark(capacity >= 10)} "
        f"for batched requests ({batch.rate:,.0f}/s, {capacity:.1f}x); "
        f"{mark(single.rate / base.rate >= 10)} for one per request "
        f"({single.rate / base.rate:.1f}x).",
        f"- /health p99 < 5 ms while 5,000 heartbeats/s are ingested: {mark(health < 5)} "
        f"({health:.2f} ms at worst); at saturation (closed loops) it is "
        f"{pct(single.health, 0.99):.1f}-{pct(batch.health, 0.99):.1f} ms.",
        f"- Limiter >= 5,000 decisions/s and exact: {mark(limiter.rate >= 5000 and limiter.exact)}"
        f" ({limiter.rate:,.0f}/s; {limiter.admitted:,} of 5,000 admitted against "
        f"{limiter.limit:,}).",
    ]


def write_section(path: Path, section: str, title: str = SECTION) -> None:
    """Replace the section ``title`` of ``path`` (or append it), leaving the rest."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(title)}\n.*?(?=^## |\Z)", re.M | re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: section.rstrip("\n") + "\n\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text.rstrip("\n") + "\n")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.http_api", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short phases, about a minute")
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy profile")
    parser.add_argument(
        "--with-runner", action="store_true",
        help="run `ledger projections run` beside the API (it shares the 2 CPUs)",
    )
    parser.add_argument("--processes", type=int, default=1,
                        help="API processes (ledger serve --processes N)")
    parser.add_argument(
        "--fresh-connections", action="store_true",
        help="new connections for each phase (with several processes, jobs then move "
        "between the processes' caches at each phase, as workers that reconnect)",
    )
    parser.add_argument("--output", type=Path, default=DOC, help="the markdown file to update")
    args = parser.parse_args(argv)
    size = QUICK if args.quick else FULL
    began = time.perf_counter()
    hot: list[tuple[str, float]] = []
    target = 5000.0
    with start_postgres() as server:
        info = machine(server)
        print(*info, sep="\n", flush=True)
        with serving(server, size, args.with_runner, args.processes) as served:
            if args.fresh_connections:
                for sock in served.kept:
                    sock.close()
                served.kept = []
            phases = [
                Phase("1 per request (POST /jobs/{id}/heartbeat), closed loop",
                      single_requests(served, size.connections), 1),
                Phase(f"{size.batch} per request (POST /heartbeats), closed loop",
                      batch_requests(served, size.batch, size.connections), size.batch),
                Phase(f"{size.batch} per request, open loop at {target:,.0f} heartbeats/s",
                      batch_requests(served, size.batch, size.connections), size.batch,
                      target / size.batch),
                Phase(f"10 per request, open loop at {target:,.0f} heartbeats/s",
                      batch_requests(served, 10, size.connections), 10, target / 10),
            ]  # fmt: skip
            loads = []
            for phase in phases:
                runs = [measure_load(served, size, phase) for _ in range(size.repeats)]
                if not args.no_profile and phase.per_request == 1:
                    # an extra run, not counted: the sampler pauses the process it reads
                    _with_profile(served, size, phase, hot)
                load = median_run(runs)
                loads.append(load)
                print(f"{phase.name}: {load.rate:,.0f} heartbeats/s, p99 "
                      f"{pct(load.latencies, 0.99):.1f} ms, /health p99 "
                      f"{pct(load.health, 0.99):.2f} ms, {dict(load.statuses)}, cpu server "
                      f"{load.server_cpu:.0%}{api_cpu_note(load)} client "
                      f"{load.client_cpu:.0%} machine "
                      f"{load.machine_cpu:.0%}; GC {load.gc}", flush=True)  # fmt: skip
            base = naive(served, size)
            print(f"naive: {base.rate:,.0f}/s", flush=True)
            limiter = limiter_rate(served.url, size.limiter_seconds)
            print(f"limiter: {limiter.rate:,.0f}/s, admitted {limiter.admitted}", flush=True)
            spread = FRESH_NOTE if args.fresh_connections else spread_note(served)
    section = report(
        Results(info, loads, base, limiter, hot, args.with_runner, args.processes, spread),
        size,
    )
    write_section(args.output, section)
    print(f"\n{section}\nwrote {args.output} in {time.perf_counter() - began:.0f} s")


def median_run(runs: list[Load]) -> Load:
    """The run with the median p99, carrying every run's p99 and /health p99."""
    ordered = sorted(runs, key=lambda r: pct(r.latencies, 0.99))
    chosen = ordered[len(ordered) // 2]
    chosen.p99_runs = [pct(r.latencies, 0.99) for r in runs]
    chosen.health_p99_runs = [pct(r.health, 0.99) for r in runs]
    return chosen


def _with_profile(
    served: Served, size: Size, phase: Phase, hot: list[tuple[str, float]]
) -> Load:
    found: list[list[tuple[str, float]]] = []
    thread = threading.Thread(
        target=lambda: found.append(profile(served.api_pids[0], size.seconds * 0.8))
    )
    thread.start()
    load = measure_load(served, size, phase)
    thread.join(size.seconds + 90)
    if found:
        hot.extend(found[0])
    return load


if __name__ == "__main__":
    main()
