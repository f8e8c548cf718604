"""The web console's pages on a large ledger (issue 15): each page's time p95 and the first
page's transferred bytes, on PostgreSQL.

The log is generated as ``bench.projection_rebuild`` does (COPY into eventsourcing's events
table: jobs of 9 or 12 events, enqueue to completion, one in ten failing once), plus a few
hundred real dead letters appended through the ledger (enqueue, three failed attempts);
every view is then rebuilt from that log, so the pages read what ``ledger serve`` would.
The API with the console runs in this process (uvicorn on 127.0.0.1, as ``ledger serve``
builds it, no projection runner, nothing else writing), and an httpx client signed in with
an admin key GETs each page: the time is the client's, so it includes the loopback round
trip. Baselines, in the same run: ``GET /health/live`` (the HTTP floor: no database) and
``GET /health`` (the API's JSON health body, read from the same views as the overview).

``python -m bench.console [--jobs N] [--quick]``: writes its section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg

from adapters.http.wiring import build_http
from adapters.postgres.backend import EVENTS_TABLE
from adapters.postgres.store import PostgresViewStore
from adapters.service.bootstrap import Container, build, utc_now
from adapters.service.settings import Settings
from bench.common import fresh_database, pct
from bench.projection_rebuild import COUNT_EVENTS, write_log
from ledger.access import Role, new_key
from ledger.commands import ClaimJob, EnqueueJob, FailJob, RecordHeartbeat
from projections.rebuild import rebuild
from projections.registry import VIEWS
from tests.support.http import serve_in_thread
from tests.support.pg import start_postgres

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
SECTION = "## Console pages (issue 15)"
EVENTS_PER_JOB = 9.3
"""About what bench.projection_rebuild's job_life writes per job (9 or 12 events)."""
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
LINKED = re.compile(r'(?:href|src)="(/ui/static/[^"]+)"')


@dataclass(frozen=True)
class Size:
    jobs: int
    dead_letters: int
    requests: int  # timed GETs per page


FULL = Size(1_000_000, 300, 50)
QUICK = Size(20_000, 30, 20)


def seed(url: str, size: Size, log: Callable[[str], object]) -> tuple[int, float]:
    """The log and every view; (events in the log, seconds spent seeding)."""
    began = time.perf_counter()
    container = build(Settings.from_env({"DATABASE_URL": url}))
    try:
        write_log(url, int(size.jobs * EVENTS_PER_JOB))
        log(f"log written: {time.perf_counter() - began:.0f} s")
        dead_letter(container, size.dead_letters)
    finally:
        container.close()
    store = PostgresViewStore(url, EVENTS_TABLE)
    try:
        for view in VIEWS.values():
            rebuild(store, view)
            log(f"{view.name} rebuilt: {time.perf_counter() - began:.0f} s")
    finally:
        store.close()
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(COUNT_EVENTS).fetchone()
        conn.execute("VACUUM ANALYZE")
    return int(row[0] if row else 0), time.perf_counter() - began


def dead_letter(container: Container, count: int) -> None:
    """``count`` jobs that ran once with 5 heartbeats and failed (max_attempts 1: dead
    letters), with five error texts, in batches as a busy API writes them."""
    ledger, now = container.ledger, utc_now()
    made = ledger.execute_batch(
        [EnqueueJob(customer_id=f"customer-{n % 7}", queue="emails", max_attempts=1,
                    payload={"n": n}) for n in range(count)], now)
    ids = [outcome.job_id for outcome in made if not isinstance(outcome, Exception)]
    ledger.execute_batch([ClaimJob(job_id=i, worker_id="bench") for i in ids], now)
    for beat in range(5):
        ledger.execute_batch(
            [RecordHeartbeat(job_id=i, attempt=1, worker_id="bench") for i in ids],
            now + timedelta(seconds=beat))
    ledger.execute_batch(
        [FailJob(job_id=i, attempt=1, worker_id="bench",
                 error=f"Timeout talking to upstream {n % 5}") for n, i in enumerate(ids)],
        now + timedelta(seconds=6))


def signed_in(base_url: str, key: str) -> httpx.Client:
    client = httpx.Client(base_url=base_url, timeout=120)
    found = CSRF.search(client.get("/ui/login").text)
    assert found, "no CSRF token on the sign-in page"
    answer = client.post("/ui/login", data={"csrf": found.group(1), "api_key": key,
                                            "next": "/ui"})
    assert answer.status_code == 303, answer.text
    return client


def timed(client: httpx.Client, path: str, count: int) -> list[float]:
    """``count`` GETs of ``path`` after one to warm up; seconds each. ``/health`` may answer
    503: nothing feeds the views here, and its body says so."""
    expected = (200, 503) if path == "/health" else (200,)
    client.get(path)  # warm: plans cached, pages in memory
    times = []
    for _ in range(count):
        began = time.perf_counter()
        answer = client.get(path)
        times.append(time.perf_counter() - began)
        assert answer.status_code in expected, (path, answer.status_code)
    return times


def first_page_bytes(client: httpx.Client) -> tuple[int, int]:
    """Bytes transferred for a first visit to /ui (the page, its static files and the
    charts' series), and the number of responses."""
    page = client.get("/ui")
    total, count = page.num_bytes_downloaded, 1
    for path in [*sorted(set(LINKED.findall(page.text))), "/ui/overview/minutes.json"]:
        answer = client.get(path, headers={"accept-encoding": "gzip, br"})
        total += answer.num_bytes_downloaded
        count += 1
    return total, count


def pages(container: Container, url: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        some = conn.execute("SELECT job_id FROM job_status ORDER BY job_id "
                            "OFFSET 500 LIMIT 1").fetchone()
        dead = conn.execute("SELECT job_id FROM job_status WHERE status = 'dead_lettered' "
                            "LIMIT 1").fetchone()
    assert some
    assert dead
    return {
        "Overview (/ui)": "/ui",
        "Overview's live panel": "/ui/overview/health",
        "Overview's chart series": "/ui/overview/minutes.json",
        "Jobs, first page": "/ui/jobs",
        "Jobs, a later page (keyset)": f"/ui/jobs?after={some[0]}",
        "Jobs, status and queue": "/ui/jobs?status=completed&queue=emails",
        "Jobs, error text": "/ui/jobs?error_contains=upstream",
        "Job (a completed one)": f"/ui/jobs/{some[0]}",
        "Job (a dead letter)": f"/ui/jobs/{dead[0]}",
        "Queues": "/ui/queues",
        "Dead letters": "/ui/dead-letters",
        "Views": "/ui/views",
        "Audit (the form; a run reads the whole log)": "/ui/audit",
        "baseline: GET /health/live (no database)": "/health/live",
        "baseline: GET /health (the JSON body)": "/health",
    }


@contextmanager
def console_server(url: str) -> Iterator[tuple[Container, str, str]]:
    container = build(Settings.from_env({"DATABASE_URL": url}))
    key, record = new_key(Role.ADMIN, None, "bench", utc_now())
    container.backend.key_store().add(record)
    try:
        with serve_in_thread(build_http(container)) as running:
            yield container, running.base_url, key
    finally:
        container.close()


def measure(url: str, size: Size, log: Callable[[str], object]) -> dict[str, Any]:
    events, seeding = seed(url, size, log)
    log(f"seeded {events:,} events in {seeding:.0f} s")
    results: dict[str, list[float]] = {}
    with console_server(url) as (container, base_url, key), \
            contextlib.closing(signed_in(base_url, key)) as client:
        for name, path in pages(container, url).items():
            results[name] = timed(client, path, size.requests)
            log(f"{name}: p95 {pct(results[name], 0.95) * 1000:.1f} ms")
        transferred, responses = first_page_bytes(client)
    return {"events": events, "seeding": seeding, "times": results,
            "bytes": transferred, "responses": responses}


def section(command: str, size: Size, found: dict[str, Any]) -> str:
    times: dict[str, list[float]] = found["times"]
    rows = []
    for name, values in times.items():
        p95 = pct(values, 0.95) * 1000
        bar = "" if name.startswith("baseline") else (" (met)" if p95 < 100 else " (NOT met)")
        rows.append(f"| {name} | {pct(values, 0.5) * 1000:.1f} | **{p95:.1f}**{bar} | "
                    f"{len(values)} |")
    kb = found["bytes"] / 1000
    return "\n".join([
        SECTION, "",
        f"Produced by `{command}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs; the benchmark, the API and PostgreSQL share the machine "
        f"with other work (load average {os.getloadavg()[0]:.1f} at the end of the run).", "",
        f"The ledger: {size.jobs:,} generated jobs and {size.dead_letters:,} dead letters, "
        f"{found['events']:,} events in the log (COPY, then every view rebuilt from it; "
        f"{found['seeding']:.0f} s). The issue asks for 1,000,000 jobs and 20,000,000 "
        "events: this run is the size stated here.", "",
        "Each page GET by a signed-in admin over loopback (the client's time: it includes "
        "the round trip and the HTML's transfer), after one warm-up GET; the bar is p95 < "
        "100 ms.", "",
        "| page | p50 ms | p95 ms | GETs |",
        "|---|---:|---:|---:|",
        *rows, "",
        f"First visit to `/ui` (the page, its stylesheets and scripts, the charts' series; "
        f"no cache): **{kb:,.1f} KB** in {found['responses']} responses, as the server "
        f"sends them (the bar is 200 KB).", "",
    ])


def write_section(path: Path, text_of_section: str) -> None:
    """Replace this benchmark's section of ``path`` (or append it), leaving the rest."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.M | re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: text_of_section.rstrip("\n") + "\n\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + text_of_section.rstrip("\n") + "\n"
    path.write_text(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small ledger (20,000 jobs)")
    parser.add_argument("--jobs", type=int, help="generated jobs (default 1,000,000)")
    parser.add_argument("--no-write", action="store_true", help="print, do not write the doc")
    args = parser.parse_args(argv)
    size = QUICK if args.quick else FULL
    if args.jobs:
        size = Size(args.jobs, size.dead_letters, size.requests)
    with start_postgres() as server, fresh_database(server, "console") as url:
        found = measure(url, size, print)
    command = "python -m bench.console" + (f" --jobs {args.jobs}" if args.jobs else "")
    text = section(command + (" --quick" if args.quick else ""), size, found)
    print(text)
    if not args.no_write:
        write_section(DOC, text)


if __name__ == "__main__":
    main()
