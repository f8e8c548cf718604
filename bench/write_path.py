"""Write-path benchmark (issue 2): one ``save()`` per event against the batched paths.

``python -m bench.write_path [--quick]`` starts a throwaway PostgreSQL with durable commits
(or uses ``DATABASE_URL``), runs each measurement several times on fresh databases, prints
the figures and writes them into docs/benchmarks.md under its own section, leaving the
file's other sections alone. Every loop is bounded in count and time (full run: a few
minutes; --quick: under a minute).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from uuid import UUID, uuid4

import psycopg
from psycopg import sql

from adapters.postgres.backend import EVENTS_TABLE, postgres_env
from adapters.service.batching import BatchWriter
from adapters.service.bootstrap import utc_now
from ledger.application import JobLedger, Result
from ledger.commands import AnyCommand, ClaimJob, EnqueueJob, Outcome, RecordHeartbeat
from ledger.job import Job
from tests.support.pg import PostgresServer, start_postgres

SECTION = "## Ledger write path (issue 2)"
DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
HEARTBEAT = f"{Job.HeartbeatRecorded.__module__}:{Job.HeartbeatRecorded.__qualname__}"
ENQUEUED = f"{Job.Enqueued.__module__}:{Job.Enqueued.__qualname__}"
COUNT_TOPIC = sql.SQL("SELECT count(*) FROM {table} WHERE topic = %s")
DURABILITY = "SELECT name, setting FROM pg_settings WHERE name = ANY(%s) ORDER BY name"
DURABILITY_SETTINGS = ["fsync", "synchronous_commit", "full_page_writes", "wal_sync_method"]
NAIVE, ENQUEUE_NAIVE = "naive, 1 thread", "enqueue, one per save"
W32 = "BatchWriter, 32 threads"
CONFLICT = "conflict (500 per batch, 5 of its jobs changed by a second ledger)"
PROBE_TABLE = "CREATE TABLE commit_probe (n int NOT NULL)"
PROBE_INSERT = "INSERT INTO commit_probe VALUES (1)"


@dataclass(frozen=True)
class Size:
    jobs: int  # in-progress jobs the heartbeats go to
    seconds: float  # time bound of one run
    naive_max: int  # count bound of one one-per-save run
    batched_max: int  # count bound of one batched run
    conflict_batches: int
    load_heartbeats: int  # mid-way between two snapshots: the average case
    repeats: int


FULL = Size(1000, 4.0, 5_000, 300_000, 20, 10_050, 3)
QUICK = Size(1000, 0.7, 1_000, 50_000, 6, 2_050, 3)


@dataclass
class Run:
    events: int
    seconds: float
    latencies: list[float] = field(default_factory=list)
    notes: dict[str, float] = field(default_factory=dict)
    logged: int | None = None  # events of the measured topic expected in the log

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


class CountingLedger(JobLedger):
    """A JobLedger that counts its decide rounds (a re-decided batch takes two or more)."""

    name = "JobLedger"  # eventsourcing names the tables after the class unless told
    rounds = 0

    def _decide_and_save(
        self, commands: Sequence[AnyCommand], now: datetime, *, fresh: bool,
        guess: bool = False,
    ) -> list[Result]:
        self.rounds += 1
        return super()._decide_and_save(commands, now, fresh=fresh, guess=guess)


Jobs = list[tuple[UUID, str]]  # (job id, worker id): in progress at attempt 1
Scenario = Callable[[str, CountingLedger, Jobs], Run]


def open_ledger(url: str, snapshot_interval: int = 100) -> CountingLedger:
    return CountingLedger(postgres_env(url), snapshot_interval=snapshot_interval)


@contextmanager
def fresh_database(server: PostgresServer) -> Iterator[str]:
    name = f"bench_write_path_{uuid4().hex[:12]}"
    url = server.create_database(name)
    try:
        yield url
    finally:
        server.drop_database(name)


def count_events(url: str, topic: str) -> int:
    with psycopg.connect(url) as conn:
        cursor = conn.execute(COUNT_TOPIC.format(table=sql.Identifier(EVENTS_TABLE)), (topic,))
        return int(cursor.fetchone()[0])  # type: ignore[index]


def ok(result: Result) -> Outcome:
    if not isinstance(result, Outcome):
        raise result
    return result


def heartbeat(job: tuple[UUID, str]) -> RecordHeartbeat:
    return RecordHeartbeat(job_id=job[0], attempt=1, worker_id=job[1])


def start_jobs(ledger: JobLedger, n: int) -> Jobs:
    """Enqueue and claim ``n`` jobs, 500 per transaction."""
    jobs: Jobs = []
    for start in range(0, n, 500):
        size = min(500, n - start)
        enqueue = [new_job(start + i) for i in range(size)]
        ids = [ok(r).job_id for r in ledger.execute_batch(enqueue, utc_now())]
        workers = [f"worker-{start + i}" for i in range(size)]
        claims = [ClaimJob(job_id=j, worker_id=w) for j, w in zip(ids, workers, strict=True)]
        for result in ledger.execute_batch(claims, utc_now()):
            ok(result)
        jobs.extend(zip(ids, workers, strict=True))
    return jobs


def threaded(
    jobs: Jobs, threads: int, most: int, seconds: float, send: Callable[[AnyCommand], object]
) -> Run:
    """``threads`` callers, each owning its share of the jobs, send heartbeats one at a
    time and wait for each; per-heartbeat latencies are kept."""
    deadline = time.perf_counter() + seconds

    def work(index: int) -> list[float]:
        mine = jobs[index::threads] or [jobs[index % len(jobs)]]  # more threads than jobs
        latencies: list[float] = []
        while len(latencies) < most // threads and time.perf_counter() < deadline:
            began = time.perf_counter()
            send(heartbeat(mine[len(latencies) % len(mine)]))
            latencies.append(time.perf_counter() - began)
        return latencies

    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        every = [x for latencies in pool.map(work, range(threads)) for x in latencies]
    return Run(len(every), time.perf_counter() - start, every)


def naive(ledger: JobLedger, jobs: Jobs, threads: int, most: int, seconds: float) -> Run:
    """One ``ledger.execute`` (one ``save()``, one transaction) per heartbeat."""
    return threaded(jobs, threads, most, seconds, lambda c: ledger.execute(c, utc_now()))


def writer(ledger: JobLedger, jobs: Jobs, threads: int, most: int, seconds: float) -> Run:
    """Heartbeats through one ``BatchWriter`` (group commit) from ``threads`` callers."""
    with BatchWriter(ledger, utc_now) as group:
        run = threaded(jobs, threads, most, seconds, lambda c: ok(group.submit(c).result(60)))
    run.notes["mean batch"] = group.commands / max(group.batches, 1)
    return run


def in_batches(
    ledger: JobLedger, make: Callable[[int], AnyCommand], batch: int, most: int, seconds: float
) -> Run:
    """Commands ``make(0), make(1), ...``: one ``execute`` each when ``batch`` is 1 (the
    naive path), else ``execute_batch`` of ``batch`` commands, one transaction each."""
    start, done = time.perf_counter(), 0
    while done + batch <= most and time.perf_counter() - start < seconds:
        commands = [make(done + i) for i in range(batch)]
        if batch == 1:
            ledger.execute(commands[0], utc_now())
        else:
            for result in ledger.execute_batch(commands, utc_now()):
                ok(result)
        done += batch
    return Run(done, time.perf_counter() - start)


def new_job(n: int) -> EnqueueJob:
    return EnqueueJob(customer_id="bench", payload={"n": n})


def conflict(
    url: str, ledger: CountingLedger, jobs: Jobs, batches: int, seconds: float, *, batch: int = 500
) -> Run:
    """Batches of ``batch`` heartbeats; before every other batch a second ledger (another
    process) heartbeats 5 of that batch's jobs, so the batch meets version conflicts."""
    other = open_ledger(url)
    clean: list[float] = []
    clashed: list[float] = []
    extra_rounds = by_other = done = 0
    start = time.perf_counter()
    try:
        for i in range(batches):
            if time.perf_counter() - start > seconds:
                break
            chunk = [jobs[(i * batch + k) % len(jobs)] for k in range(batch)]
            for job in chunk[:: max(1, batch // 5)] if i % 2 else []:
                other.execute(heartbeat(job), utc_now())
                by_other += 1
            rounds, began = ledger.rounds, time.perf_counter()
            for result in ledger.execute_batch([heartbeat(j) for j in chunk], utc_now()):
                ok(result)
            (clashed if i % 2 else clean).append(time.perf_counter() - began)
            extra_rounds += ledger.rounds - rounds - 1
            done += len(chunk)
    finally:
        other.close()
    return Run(
        done, sum(clean) + sum(clashed), [], logged=done + by_other,
        notes={"clashed": len(clashed), "extra rounds": extra_rounds,
               "clean batch ms": 1e3 * statistics.median(clean or [0.0]),
               "clashed batch ms": 1e3 * statistics.median(clashed or [0.0])},
    )  # fmt: skip


def load_time(url: str, heartbeats: int, interval: int, loads: int) -> Run:
    """Seed one job with ``heartbeats`` (transactions end on multiples of 100, where saves
    one by one would snapshot), then time ``get_job`` on ``loads`` fresh ledgers."""
    seeder = open_ledger(url, interval)
    try:
        [job] = start_jobs(seeder, 1)
        done, current = 0, 2
        while done < heartbeats:
            size = min(heartbeats - done, 100 - current % 100)
            current = ok(seeder.execute_batch([heartbeat(job)] * size, utc_now())[-1]).version
            done += size
    finally:
        seeder.close()
    times: list[float] = []
    for _ in range(loads):
        reader = open_ledger(url, interval)
        try:
            reader.recorder.max_notification_id()  # connect before timing
            began = time.perf_counter()
            loaded = reader.get_job(job[0])
            times.append(time.perf_counter() - began)
            assert reader.snapshots is not None
            snapshots = list(reader.snapshots.get(job[0], desc=True, limit=1))
        finally:
            reader.close()
        if loaded.heartbeats != heartbeats or loaded.version != current:
            raise RuntimeError(f"loaded {loaded.heartbeats} heartbeats, wrote {heartbeats}")
    replayed = current - (snapshots[0].originator_version if snapshots else 0)
    return Run(loads, sum(times), times, {"version": current, "replayed": replayed}, heartbeats)


def measure(server: PostgresServer, size: Size, scenario: Scenario, topic: str) -> list[Run]:
    """``size.repeats`` runs of ``scenario``, each on a fresh database, checking the log."""
    runs = []
    for _ in range(size.repeats):
        with fresh_database(server) as url:
            ledger = open_ledger(url)
            try:
                jobs = start_jobs(ledger, size.jobs if topic == HEARTBEAT else 0)
                before = count_events(url, topic)
                run = scenario(url, ledger, jobs)
            finally:
                ledger.close()
            logged = count_events(url, topic) - before
        if logged != (run.events if run.logged is None else run.logged):
            raise RuntimeError(f"{run.events} ({run.logged}) expected in the log, {logged} found")
        runs.append(run)
    return runs


def commit_ceiling(server: PostgresServer, seconds: float) -> float:
    """Single-row durable commits per second from one connection: what the disk allows."""
    with fresh_database(server) as url, psycopg.connect(url, autocommit=True) as conn:
        conn.execute(PROBE_TABLE)
        start, done = time.perf_counter(), 0
        while time.perf_counter() - start < seconds:
            conn.execute(PROBE_INSERT)
            done += 1
        return done / (time.perf_counter() - start)


def machine(server: PostgresServer) -> list[str]:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    cpu = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    ram = re.search(r"^MemTotal:\s*(\d+)", meminfo, re.M)
    memory = f"{int(ram.group(1)) / 2**20:.1f} GiB" if ram else "? GiB"
    with psycopg.connect(server.url) as conn:
        pg = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
        rows = conn.execute(DURABILITY, (DURABILITY_SETTINGS,)).fetchall()
    kind = "DATABASE_URL" if os.environ.get("DATABASE_URL") else type(server).__name__
    return [
        f"- Machine: nproc {os.cpu_count()} ({cpu.group(1) if cpu else platform.processor()}),"
        f" {memory} RAM, {platform.platform()}",
        f"- Versions: Python {platform.python_version()}, PostgreSQL {pg}, eventsourcing "
        f"{version('eventsourcing')}, psycopg {version('psycopg')}",
        f"- Server: {kind}; " + ", ".join(f"{name}={value}" for name, value in rows),
    ]


def spread(values: Sequence[float], scale: float = 1.0) -> str:
    v = [x * scale for x in values]
    m = statistics.median(v)
    d = 0 if m >= 100 else 1 if m >= 10 else 2
    return f"{m:,.{d}f} ({min(v):,.{d}f}-{max(v):,.{d}f})"


def pct(run: Run, q: float) -> float:
    ordered = sorted(run.latencies)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e3


def table_row(key: str, runs: list[Run], base: float) -> str:
    first, unit = runs[0], "jobs/s" if key.startswith("enqueue") else "events/s"
    if key.startswith("load"):
        ms = spread([x for r in runs for x in r.latencies], 1e3)
        return (f"| {key} | {ms} ms per get_job | | version {first.notes['version']:.0f}, "
                f"{first.notes['replayed']:.0f} events replayed |")  # fmt: skip
    notes = [f"{k} {spread([r.notes[k] for r in runs])}" for k in first.notes if "ms" in k]
    if first.latencies:
        notes += [f"p{q:.0%} {spread([pct(r, q) for r in runs])} ms" for q in (0.5, 0.99)]
    if "mean batch" in first.notes:
        notes.append(f"mean batch {spread([r.notes['mean batch'] for r in runs])}")
    ratio = statistics.median(r.rate for r in runs) / base
    return f"| {key} | {spread([r.rate for r in runs])} {unit} | {ratio:.1f}x | " + (
        ", ".join(notes).replace("p50%", "p50").replace("p99%", "p99") + " |")  # fmt: skip


def report(
    results: dict[str, list[Run]], info: list[str], ceilings: list[float], size: Size
) -> str:
    ceiling = statistics.median(ceilings)
    m = {k: statistics.median(r.rate for r in runs) for k, runs in results.items()}
    naive1, naive8, b500 = m[NAIVE], m["naive, 8 threads"], m["execute_batch, 500 per batch"]
    rows = [table_row(k, r, m[ENQUEUE_NAIVE] if k.startswith("enqueue") else naive1)
            for k, r in results.items()]  # fmt: skip
    clash = results[CONFLICT]
    clashes = sum(r.notes["clashed"] for r in clash)
    snap, full = (statistics.median(results[k][0].latencies) for k in results if "load" in k)
    reading = [
        f"- One save per heartbeat: {naive1:,.0f}/s from one thread, {naive8:,.0f}/s from "
        "eight (eventsourcing locks the events table until commit, so writers queue); "
        f"{1e3 / naive1:.2f} ms per heartbeat, of which a durable commit takes "
        f"{1e3 / ceiling:.2f} ms on this disk.",
        f"- Batches of 500: {b500:,.0f} heartbeats/s, {b500 / naive1:.1f}x the naive path "
        f"(SPEC asks for at least 10x). BatchWriter, 32 waiting callers: {m[W32]:,.0f}/s, "
        f"p99 {statistics.median(pct(r, 0.99) for r in results[W32]):.1f} ms: its batches are "
        "only as large as the number of callers waiting.",
        f"- Enqueue: {m['enqueue, execute_batch 500']:,.0f} jobs/s in batches of 500 against "
        f"{m[ENQUEUE_NAIVE]:,.0f} one per save.",
        f"- Conflicts: all {clashes:.0f} clashed batches completed with "
        f"{sum(r.notes['extra rounds'] for r in clash) / max(clashes, 1):.1f} extra decide "
        "round each, and the log holds exactly the accepted heartbeats. The re-decide checks "
        "the batch's cached versions in one query and reads again only the jobs that "
        "changed; the rest of its time is the failed first round.",
        f"- Load: a job with {size.load_heartbeats:,} heartbeats loads in {snap * 1e3:.1f} ms "
        "from its latest snapshot. With snapshot_interval=0 none is written; the repository "
        "still asks the (empty) snapshot table, then reads and replays every event: "
        f"{full * 1e3:.1f} ms ({full / snap:.0f}x), growing with the job's history.",
    ]  # fmt: skip
    command = " ".join(["python -m bench.write_path", *sys.argv[1:]])
    return "\n".join([
        SECTION, "",
        f"Produced by `{command}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Each figure is "
        f"the median of {size.repeats} runs, each on a fresh database, with (min-max); "
        "\"vs naive\" divides medians by the one-save-per-event baseline of the same run.", "",
        *info, f"- Durable commit ceiling: {spread(ceilings)} single-row commits/s from one "
        "connection, measured after the runs",
        "", "| measurement | median (min-max) | vs naive | notes |", "|---|---|---|---|", *rows,
        "", "Reading:", "", *reading, "",
    ])  # fmt: skip


def write_section(path: Path, section: str) -> None:
    """Replace this benchmark's section of ``path`` (or append it), leaving the rest."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.M | re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: section.rstrip("\n") + "\n\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.rstrip("\n") + "\n")


def run_all(server: PostgresServer, size: Size) -> dict[str, list[Run]]:
    s, few, many = size.seconds, size.naive_max, size.batched_max

    def beat(jobs: Jobs) -> Callable[[int], AnyCommand]:
        return lambda i: heartbeat(jobs[i % len(jobs)])

    plan: list[tuple[str, str, Scenario]] = [
        (NAIVE, HEARTBEAT, lambda u, lg, j: naive(lg, j, 1, few, s)),
        ("naive, 8 threads", HEARTBEAT, lambda u, lg, j: naive(lg, j, 8, few, s)),
        ("execute_batch, 100 per batch", HEARTBEAT,
         lambda u, lg, j: in_batches(lg, beat(j), 100, many, s)),
        ("execute_batch, 500 per batch", HEARTBEAT,
         lambda u, lg, j: in_batches(lg, beat(j), 500, many, s)),
        ("BatchWriter, 8 threads", HEARTBEAT, lambda u, lg, j: writer(lg, j, 8, many, s)),
        (W32, HEARTBEAT, lambda u, lg, j: writer(lg, j, 32, many, s)),
        (ENQUEUE_NAIVE, ENQUEUED, lambda u, lg, j: in_batches(lg, new_job, 1, few, s)),
        ("enqueue, execute_batch 500", ENQUEUED,
         lambda u, lg, j: in_batches(lg, new_job, 500, many, s)),
        (CONFLICT, HEARTBEAT, lambda u, lg, j: conflict(u, lg, j, size.conflict_batches, 3 * s)),
    ]  # fmt: skip
    results: dict[str, list[Run]] = {}
    for name, topic, scenario in plan:
        results[name] = measure(server, size, scenario, topic)
        print(f"{name}: {spread([r.rate for r in results[name]])}/s", flush=True)
    for name, interval in [("load: snapshots every 100", 100), ("load: snapshot_interval=0", 0)]:
        with fresh_database(server) as url:
            results[name] = [load_time(url, size.load_heartbeats, interval, size.repeats)]
        print(f"{name}: {spread(results[name][0].latencies, 1e3)} ms", flush=True)
    return results


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.write_path", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs, under a minute")
    parser.add_argument("--repeats", type=int, help="runs per measurement (default 3)")
    parser.add_argument("--output", type=Path, default=DOC, help="the markdown file to update")
    args = parser.parse_args(argv)
    size = QUICK if args.quick else FULL
    size = replace(size, repeats=max(1, args.repeats)) if args.repeats else size
    began = time.perf_counter()
    with start_postgres() as server:
        info = machine(server)
        print(*info, sep="\n", flush=True)
        commit_ceiling(server, 1.0)  # warm-up: the cluster's first WAL writes are slower
        results = run_all(server, size)
        ceilings = [commit_ceiling(server, 1.0) for _ in range(size.repeats)]
    section = report(results, info, ceilings, size)
    write_section(args.output, section)
    print(f"\n{section}\nwrote {args.output} in {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
