"""``python -m bench.client [--quick]``: the producers' client library (issue 18).

Against ``ledger serve --api-only`` (its own process, PostgreSQL with durable commits, a
service key):

- ``Client.enqueue_many`` with 1,000 jobs per call (bar: 10,000 jobs/s), beside the
  in-process ledger enqueuing the same batches (``execute_batch``, no HTTP) in this run;
- single ``Client.enqueue`` from 16 threads (one client each) against Procrastinate's
  ``defer`` from 16 threads (its sync API, a pool of 17) on the same server.

Writes its section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adapters.service.bootstrap import build, utc_now
from adapters.service.settings import Settings
from bench import peer
from bench.common import load_note
from bench.projection_rebuild import database
from job_ledger import Client, JobRequest
from ledger.access import Role, new_key
from ledger.commands import AnyCommand, EnqueueJob

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
SECTION = "## Producers' client: enqueue_many over HTTP, 16 threads against Procrastinate"


@contextmanager
def serving(url: str) -> Iterator[tuple[str, str]]:
    """``ledger serve --api-only --port 0`` on ``url``: its base URL and a service key."""
    container = build(Settings(database_url=url))
    key, record = new_key(Role.SERVICE, None, "bench", utc_now())
    container.backend.key_store().add(record)
    container.close()
    env = {**os.environ, "DATABASE_URL": url, "RATE_LIMIT_SERVICE_PER_MINUTE": "100000000"}
    process = subprocess.Popen(
        ["ledger", "serve", "--api-only", "--port", "0", "--log-level", "warning"],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    try:
        base = None
        while base is None:
            line = process.stderr.readline()
            if not line:
                raise RuntimeError("ledger serve exited before serving")
            found = re.search(r"API on (http://\S+)", line)
            base = found.group(1) if found else None
        yield base, key
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)


def batches_over_http(base: str, key: str, calls: int, per_call: int) -> float:
    with Client(base, key, customer_id="bench", timeout=60) as client:
        client.enqueue_many([JobRequest(payload={"n": -1})])  # warm-up
        started = time.perf_counter()
        for call in range(calls):
            jobs = [JobRequest(payload={"n": call * per_call + i}) for i in range(per_call)]
            assert len(client.enqueue_many(jobs)) == per_call
        return calls * per_call / (time.perf_counter() - started)


def batches_in_process(url: str, calls: int, per_call: int) -> float:
    container = build(Settings(database_url=url))
    ledger = container.ledger
    try:
        started = time.perf_counter()
        for call in range(calls):
            commands: list[AnyCommand] = [
                EnqueueJob(customer_id="bench", payload={"n": call * per_call + i})
                for i in range(per_call)
            ]
            ledger.execute_batch(commands, utc_now())
        return calls * per_call / (time.perf_counter() - started)
    finally:
        container.close()


def threads_rate(threads: int, seconds: float, setup: Callable[[], Any],
                 op: Callable[[Any, int], None]) -> float:
    """``threads`` threads, each with its own ``setup()``, calling ``op`` for ``seconds``."""
    done = [0] * threads
    ready = threading.Barrier(threads + 1)
    end = [0.0]

    def run(index: int) -> None:
        handle = setup()
        ready.wait()
        while time.monotonic() < end[0]:
            op(handle, done[index])
            done[index] += 1

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    end[0] = time.monotonic() + seconds + 0.05
    ready.wait()
    started = time.perf_counter()
    for worker in workers:
        worker.join()
    return sum(done) / (time.perf_counter() - started)


def single_over_http(base: str, key: str, threads: int, seconds: float) -> float:
    clients: list[Client] = []

    def setup() -> Client:
        client = Client(base, key, customer_id="bench")
        clients.append(client)
        client.enqueue({"n": -1})
        return client

    try:
        return threads_rate(threads, seconds, setup, lambda c, n: c.enqueue({"n": n}))
    finally:
        for client in clients:
            client.close()


def procrastinate_defer(url: str, threads: int, seconds: float) -> float:
    peer.apply_schema(url)
    app = peer.make_app(url, threads + 1)
    with app.open():
        task = app.tasks[peer.TASK]
        task.defer(n=-1)
        return threads_rate(threads, seconds, lambda: task, lambda t, n: t.defer(n=n))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--no-doc", action="store_true", help="Do not write docs/benchmarks.md")
    args = parser.parse_args(argv)
    calls, per_call, threads, seconds = (5, 1000, 16, 2.0) if args.quick else (30, 1000, 16, 10.0)
    figures: dict[str, float] = {}
    with database() as url, serving(url) as (base, key):
        figures["http_batch"] = batches_over_http(base, key, calls, per_call)
        print(f"enqueue_many over HTTP: {figures['http_batch']:,.0f} jobs/s", flush=True)
        figures["http_single"] = single_over_http(base, key, threads, seconds)
        print(f"enqueue, {threads} threads: {figures['http_single']:,.0f} jobs/s", flush=True)
    with database() as url:
        figures["in_process_batch"] = batches_in_process(url, calls, per_call)
        print(f"in-process batches: {figures['in_process_batch']:,.0f} jobs/s", flush=True)
    with database() as url:
        figures["peer_single"] = procrastinate_defer(url, threads, seconds)
        print(f"Procrastinate defer, {threads} threads: {figures['peer_single']:,.0f} jobs/s")
    if not args.no_doc:
        command = "python -m bench.client" + (" --quick" if args.quick else "")
        write_section(section(command, figures, calls, per_call, threads))
        print(f"wrote the '{SECTION}' section of {DOC}")


def section(command: str, f: dict[str, float], calls: int, per_call: int, threads: int) -> str:
    ok = {True: "yes", False: "**no**"}
    return "\n".join([
        SECTION, "",
        f"Produced by `{command}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} "
        "CPUs; `ledger serve --api-only` in its own process and the clients in this one, on a "
        f"throwaway PostgreSQL on the same machine ({load_note()}; read the ratios more "
        "than the rates).", "",
        "| measure | figure | bar or baseline | met |", "|---|---:|---:|---|",
        f"| `Client.enqueue_many`, {per_call:,} jobs per call, {calls} calls, one thread | "
        f"**{f['http_batch']:,.0f} jobs/s** | 10,000 jobs/s; the same batches in process "
        f"(`execute_batch`, no HTTP): {f['in_process_batch']:,.0f} jobs/s | "
        f"{ok[f['http_batch'] >= 10_000]} |",
        f"| `Client.enqueue`, one job per call, {threads} threads | "
        f"**{f['http_single']:,.0f} jobs/s** | Procrastinate `defer`, {threads} threads: "
        f"{f['peer_single']:,.0f} jobs/s ({f['http_single'] / f['peer_single']:.2f}x) | |", "",
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
    main(sys.argv[1:])
