"""Operator controls benchmarks (issue 14, ADR 100).

``python -m bench.controls [--cancels N] [--scheduled N] [--spread S] [--bulk N]
[--claims N]`` starts a throwaway PostgreSQL (or uses ``DATABASE_URL``) and measures, each
against its bar or baseline in the same run:

- **cancel of a running job**: N handlers sleeping 10 minutes on a real worker (in-process port,
  its cache shortcut switched off so only the heartbeat answer tells it, 1 s heartbeats);
  each is cancelled through the ledger at a random moment; the time from the cancel to
  the handler stopping, p99 (bar: heartbeat interval + 1 s);
- **scheduled jobs**: N jobs enqueued with ``run_at`` spread over S seconds, then the
  projection runner, the scheduler and the dispatcher run (the real parts of ``ledger
  serve``); each job's send time minus its due time, p99 (bar: 1 s), and the scheduler's
  round, p99 (bar: 50 ms);
- **bulk cancel**: N pending jobs cancelled through ``execute_batch`` in batches of 1,000,
  against one ``execute`` per job (the baseline, on 2,000 jobs) (bar: 10,000 jobs/s);
- **the concurrency cap**: N claims from 50 concurrent claimers through the batch writer
  ``ledger serve`` uses (``bench/controls_cap.py``) on a queue with a cap against a queue
  without, in the same run (bar: the cap costs at most 20%).

It prints the figures and writes them into docs/benchmarks.md under its own section.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import anyio
import psycopg

from adapters.http.server import tune_for_serving
from adapters.service.bootstrap import Container, build, build_transport, utc_now
from adapters.service.parts import dispatcher_part, projection_part
from adapters.service.settings import Settings
from adapters.worker import InProcessLedger, JobContext, Worker, WorkerConfig
from bench import controls_cap, projection_rebuild
from bench.common import load_note
from bench.projection_rebuild import database
from ledger.application import JobLedger
from ledger.commands import AnyCommand, CancelJob, EnqueueJob
from ledger.errors import LedgerError
from ledger.job import Job
from ledger.ports.transport import JobMessage, Outgoing, Transport
from ledger.status import Status

DOC = projection_rebuild.DOC
"""Where the section goes (``python -m bench`` points it at its own output)."""
SECTION = "## Operator controls: cancel, scheduled jobs, bulk cancel, the cap"
HEARTBEAT = 1.0


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def container_for(url: str) -> Container:
    return build(Settings(database_url=url))


# -- cancel of running jobs ---------------------------------------------------------------


class HeartbeatOnly(InProcessLedger):
    """The in-process port without the cache shortcut: the heartbeat answer tells it."""

    def requested_cancels(self, attempts: Sequence[tuple[UUID, int]]) -> set[UUID]:
        return set()


def time_cancels(url: str, count: int) -> dict[str, Any]:
    container = container_for(url)
    started: dict[UUID, float] = {}
    stopped: dict[UUID, float] = {}

    async def handler(ctx: JobContext) -> None:
        started[ctx.job_id] = time.monotonic()
        try:
            await anyio.sleep(600)
        finally:
            stopped[ctx.job_id] = time.monotonic()

    async def main() -> list[float]:
        ledger = container.ledger
        transport = build_transport(container.settings, container.backend)
        port = HeartbeatOnly(ledger, clock=utc_now)
        worker = Worker(handler, transport, port, WorkerConfig(
            heartbeat_interval=HEARTBEAT, receive_wait=0.2, concurrency=count,
            worker_id="bench-cancel",
        ))
        ids = [ledger.execute(EnqueueJob(customer_id="bench"), utc_now()).job_id
               for _ in range(count)]
        await transport.send_batch([JobMessage(
            job_id=i, attempt=0, customer_id="bench", dedup_key=f"{i}:1") for i in ids])
        latencies: list[float] = []
        async with anyio.create_task_group() as tg:
            await tg.start(worker.run)
            with anyio.fail_after(60):
                while len(started) < count:
                    await anyio.sleep(0.05)
            draw = random.Random(14)
            cancelled_at: dict[UUID, float] = {}
            for job_id in ids:
                await anyio.sleep(draw.uniform(0, 0.1))  # any phase of the beats
                cancelled_at[job_id] = time.monotonic()
                ledger.execute(CancelJob(job_id=job_id, actor="bench"), utc_now())
            with anyio.fail_after(HEARTBEAT * 2 + 30):
                while len(stopped) < count:
                    await anyio.sleep(0.02)
            latencies = [stopped[j] - cancelled_at[j] for j in ids]
            with anyio.fail_after(30):
                while worker.stats.cancelled < count:
                    await anyio.sleep(0.05)
            worker.drain()
        await port.aclose()
        await transport.aclose()
        assert all(ledger.get_job(j).status == Status.CANCELLED for j in ids)
        return latencies

    try:
        latencies = anyio.run(main)
    finally:
        container.close()
    return {"count": count, "p50": pct(latencies, 0.5), "p99": pct(latencies, 0.99),
            "max": max(latencies)}


# -- scheduled jobs ----------------------------------------------------------------------


class Recording:
    """The transport, noting when each job's message was sent (keyed by the id's int:
    the harness keeps no GC-tracked object per job, so the measured process's collections
    are not made longer by the bench's own records)."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.sent: dict[int, float] = {}

    async def send_batch(self, entries: Sequence[JobMessage | Outgoing]) -> list[str]:
        ids = await self.inner.send_batch(entries)
        now = time.time()
        for entry in entries:
            message = entry.message if isinstance(entry, Outgoing) else entry
            self.sent.setdefault(message.job_id.int, now)
        return ids

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def enqueue_scheduled(
    ledger: JobLedger, count: int, spread: float, first_due: datetime, due: dict[int, float]
) -> None:
    """Enqueue ``count`` jobs due from ``first_due`` over ``spread`` seconds, in batches of
    1,000; note each one's due time in ``due`` (by the id's int, as ``Recording.sent``)."""
    for start in range(0, count, 1000):
        commands: list[AnyCommand] = []
        for n in range(start, min(count, start + 1000)):
            run_at = first_due + timedelta(seconds=spread * n / count)
            commands.append(EnqueueJob(customer_id="bench", run_at=run_at))
        for command, result in zip(commands, ledger.execute_batch(commands, utc_now()),
                                   strict=True):
            assert not isinstance(result, LedgerError), result
            assert isinstance(command, EnqueueJob)
            assert command.run_at is not None
            due[result.job_id.int] = command.run_at.timestamp()


def time_scheduled(
    url: str, count: int, spread: float, *, flushed: bool = False
) -> dict[str, Any]:
    """The parts of ``ledger serve`` run while the jobs are enqueued (as a service would:
    the dispatcher and the runner follow the log as it grows, not from its start).
    ``flushed``: the rounds' appends wait for their WAL flush, as before ADR 175 (for a
    before/after in the same conditions)."""
    container = container_for(url)
    ledger = container.ledger
    lead = 10.0 + count / 2000  # time to enqueue them all before the first is due
    due: dict[int, float] = {}
    rounds: list[float] = []
    cpu: list[float] = []
    enqueue_seconds = 0.0

    async def main() -> Recording:
        nonlocal enqueue_seconds
        transport = Recording(build_transport(container.settings, container.backend))
        async with anyio.create_task_group() as tg:
            await tg.start(projection_part(container, poll_interval=0.05))
            await tg.start(dispatcher_part(container, transport))
            began = time.perf_counter()
            await anyio.to_thread.run_sync(
                enqueue_scheduled, ledger, count, spread,
                utc_now() + timedelta(seconds=lead), due,
            )
            enqueue_seconds = time.perf_counter() - began
            print(f"  enqueued {count:,} scheduled jobs in {enqueue_seconds:.1f}s"
                  + (f", more than the lead ({lead:.0f}s): the first start late"
                     if enqueue_seconds > lead else ""), flush=True)
            with anyio.fail_after(lead + spread + 120):
                while await anyio.to_thread.run_sync(queued_jobs, url) < count:
                    await anyio.sleep(0.5)
            tg.cancel_scope.cancel()
        await transport.inner.aclose()
        return transport

    from adapters.service import scheduler as scheduler_module

    original = scheduler_module.Scheduler.round

    async def timed_round(self: scheduler_module.Scheduler) -> int:
        found = await original(self)
        if found:
            rounds.append(self.last_round_seconds)
            cpu.append(self.last_round_cpu)
        return found

    scheduler_module.Scheduler.round = timed_round  # type: ignore[method-assign]
    unflushed = scheduler_module.unflushed_releases
    if flushed:
        scheduler_module.unflushed_releases = lambda ledger: None
    try:
        with serving_process():
            anyio.run(main)
        sent = queued_times(url)
        released = release_lateness(ledger, due)
    finally:
        scheduler_module.Scheduler.round = original  # type: ignore[method-assign]
        scheduler_module.unflushed_releases = unflushed
        container.close()
    late = [sent[j] - due[j] for j in due]
    early = sum(1 for x in late if x < 0)
    return {"count": count, "spread": spread, "p50": pct(late, 0.5), "p99": pct(late, 0.99),
            "max": max(late), "early": early, "round_p50": pct(rounds, 0.5) * 1000,
            "round_p99": pct(rounds, 0.99) * 1000, "round_max": max(rounds) * 1000,
            "round_cpu_p50": pct(cpu, 0.5) * 1000, "round_cpu_p99": pct(cpu, 0.99) * 1000,
            "rounds": len(rounds), "enqueue_seconds": enqueue_seconds, "lead": lead,
            "released_p50": pct(released, 0.5), "released_p99": pct(released, 0.99),
            "released_n": len(released)}


QUEUED_JOBS = "SELECT count(DISTINCT job_id) FROM local_queue_messages"
QUEUED_TIMES = "SELECT job_id, min(sent_at) FROM local_queue_messages GROUP BY job_id"


def queued_jobs(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(QUEUED_JOBS).fetchone()
    return int(row[0]) if row else 0


def queued_times(url: str) -> dict[int, float]:
    """When each job's message was put in the local queue (its row's ``sent_at``, epoch
    seconds), by the id's int. The dispatcher's sends and the outbox's rows (ADR 151: the
    scheduler's ``Released`` writes its job's row in its own transaction, so the
    transport never sees it) are both rows of this table; an outbox row's time is its
    round's decision, and that round's append and commit are the round time reported."""
    with psycopg.connect(url) as conn:
        return {UUID(str(job)).int: float(at) for job, at in conn.execute(QUEUED_TIMES)}


def release_lateness(ledger: JobLedger, due: dict[int, float], sample: int = 1000) -> list[float]:
    """Release minus due time of ``sample`` jobs spread over the run (from their
    ``Released`` events): the scheduler's share of the lateness, the rest is the
    dispatcher's and the transport's."""
    ids = sorted(due, key=due.__getitem__)[:: max(1, len(due) // sample)]
    late: list[float] = []
    for key in ids:
        events = ledger.history(UUID(int=key))
        late += [e.timestamp.timestamp() - due[key] for e in events
                 if isinstance(e, Job.Released)]
    return late


@contextmanager
def serving_process() -> Iterator[None]:
    """The process tuned as ``ledger serve`` tunes itself (GIL switch interval, objects
    alive now frozen out of collection, larger GC thresholds); as it was afterwards."""
    interval, thresholds = sys.getswitchinterval(), gc.get_threshold()
    tune_for_serving()
    try:
        yield
    finally:
        sys.setswitchinterval(interval)
        gc.set_threshold(*thresholds)
        gc.unfreeze()


# -- bulk cancel ---------------------------------------------------------------------------


def pending_jobs(container: Container, count: int, queue: str = "default") -> list[UUID]:
    ids: list[UUID] = []
    for start in range(0, count, 1000):
        commands: list[AnyCommand] = [EnqueueJob(customer_id="bench", queue=queue)
                                      for _ in range(min(1000, count - start))]
        results = container.ledger.execute_batch(commands, utc_now())
        ids.extend(r.job_id for r in results if not isinstance(r, LedgerError))
    return ids


def time_bulk_cancel(url: str, count: int, baseline: int) -> dict[str, Any]:
    container = container_for(url)
    ledger = container.ledger
    try:
        ids = pending_jobs(container, count)
        ledger.forget()
        began = time.perf_counter()
        for start in range(0, len(ids), 1000):
            commands: list[AnyCommand] = [CancelJob(job_id=j, actor="bench", action_id="bulk")
                                          for j in ids[start:start + 1000]]
            results = ledger.execute_batch(commands, utc_now())
            assert all(not isinstance(r, LedgerError) for r in results)
        batched = time.perf_counter() - began
        singles = pending_jobs(container, baseline)
        ledger.forget()
        began = time.perf_counter()
        for job_id in singles:
            ledger.execute(CancelJob(job_id=job_id, actor="bench"), utc_now())
        single = time.perf_counter() - began
        assert ledger.get_job(ids[-1]).status == Status.CANCELLED
    finally:
        container.close()
    return {"count": count, "rate": count / batched, "seconds": batched,
            "baseline": baseline, "baseline_rate": baseline / single}


# -- the concurrency cap --------------------------------------------------------------------


def time_claims(url: str, count: int) -> dict[str, Any]:
    """Claims through the batch writer, capped against uncapped (``bench.controls_cap``)."""
    return controls_cap.time_claims(url, count)


# -- the report ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--cancels", type=int, default=200)
    parser.add_argument("--scheduled", type=int, default=100_000)
    parser.add_argument("--spread", type=float, default=100.0)
    parser.add_argument("--bulk", type=int, default=100_000)
    parser.add_argument("--baseline", type=int, default=2_000)
    parser.add_argument("--claims", type=int, default=20_000)
    parser.add_argument("--flushed-releases", action="store_true",
                        help="The scheduler's rounds wait for their WAL flush (before ADR 175)")
    parser.add_argument("--no-doc", action="store_true", help="Do not write docs/benchmarks.md")
    parser.add_argument("--only", choices=["cancel", "scheduled", "bulk", "cap"],
                        help="Run one step and print its figures (writes no doc)")
    args = parser.parse_args(argv)
    command = "python -m bench.controls" + "".join(
        f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    figures: dict[str, dict[str, Any]] = {}
    steps: list[tuple[str, Callable[[str], dict[str, Any]]]] = [
        ("cancel", lambda url: time_cancels(url, args.cancels)),
        ("scheduled", lambda url: time_scheduled(
            url, args.scheduled, args.spread, flushed=args.flushed_releases)),
        ("bulk", lambda url: time_bulk_cancel(url, args.bulk, args.baseline)),
        ("cap", lambda url: time_claims(url, args.claims)),
    ]
    for name, step in steps:
        if args.only not in (None, name):
            continue
        print(f"{name} ...", flush=True)
        with database() as url:
            figures[name] = step(url)
        print(f"  {figures[name]}", flush=True)
    if not args.no_doc and args.only is None:
        write_section(section(command, figures))
        print(f"wrote the '{SECTION}' section of {DOC}")


def section(command: str, f: dict[str, dict[str, Any]]) -> str:
    c, s, b, k = f["cancel"], f["scheduled"], f["bulk"], f["cap"]
    ok = {True: "yes", False: "**no**"}
    return "\n".join([
        SECTION, "",
        f"Produced by `{command}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} "
        "CPUs, a throwaway PostgreSQL on the same machine ("
        f"{load_note()}).", "",
        "| measure | figure | bar or baseline | met |", "|---|---:|---:|---|",
        f"| cancel of a running job, {c['count']} handlers, heartbeat answer only "
        f"({HEARTBEAT:g} s beats): p50 / p99 / max | {c['p50']:.2f} / **{c['p99']:.2f}** / "
        f"{c['max']:.2f} s | {HEARTBEAT + 1:g} s | {ok[c['p99'] <= HEARTBEAT + 1]} |",
        f"| {s['count']:,} scheduled jobs due over {s['spread']:g} s: send minus due, "
        f"p50 / p99 / max | {s['p50']:.2f} / **{s['p99']:.2f}** / {s['max']:.2f} s "
        f"({s['early']} early; released minus due, p50 / p99 of {s['released_n']:,}: "
        f"{s['released_p50']:.2f} / {s['released_p99']:.2f} s) | 1 s |"
        f" {ok[s['p99'] <= 1 and s['early'] == 0]} |",
        f"| the scheduler's round, whole (due read + releases' append, which the dispatcher "
        f"follows; {s['rounds']:,} rounds that found due jobs): p50 / p99 / max, wall | "
        f"{s['round_p50']:.1f} / **{s['round_p99']:.1f}** / {s['round_max']:.1f} ms (CPU "
        f"p50 / p99 {s['round_cpu_p50']:.1f} / {s['round_cpu_p99']:.1f} ms) | "
        f"50 ms | {ok[s['round_p99'] < 50]} |",
        f"| bulk cancel of {b['count']:,} pending jobs, batches of 1,000 | "
        f"**{b['rate']:,.0f} jobs/s** ({b['seconds']:.1f} s) | 10,000 jobs/s; one call per "
        f"job: {b['baseline_rate']:,.0f} jobs/s ({b['baseline']:,} jobs) | "
        f"{ok[b['rate'] >= 10_000]} |",
        f"| {k['count']:,} claims through the batch writer ({k['workers']} claimers, mean batch "
        f"{k['batch']:.0f}): a capped queue against an uncapped one | "
        f"{k['capped']:,.0f} against {k['free']:,.0f} claims/s: **{k['cost']:.0%} cost** | "
        f"at most 20% | {ok[k['cost'] <= 0.2]} |", "",
    ])


def write_section(text_section: str) -> None:
    """Replace this benchmark's section of docs/benchmarks.md (or append it)."""
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.M | re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: text_section.rstrip("\n") + "\n\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + text_section.rstrip("\n") + "\n"
    DOC.write_text(text)


if __name__ == "__main__":
    main()
