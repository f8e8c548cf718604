"""A large ledger for the console's benchmark, seeded fast (issue 15).

The jobs' events are written with COPY into eventsourcing's events table exactly as the
ledger writes them (the same topics, the same JSON state, versions 1..n per job), about 20
per job: enqueued, claimed, heartbeats, completed; one in ten fails once (with one of a few
error texts, or one in a hundred of those naming the job's invoice, a text of its own) and
runs again. While the rows stream to PostgreSQL, the same rows are decoded and folded, in
one pass, into every view in memory by the views' own folds (``MemoryView``). Each view is
then built by the real rebuild (``projections.rebuild.rebuild``) started from that memory
as it would start from a checkpoint: its rows are written into the shadow tables, the
events appended after (the real dead letters) folded on, and swapped in with its position.

So the log is read once instead of once per view, and nothing is folded twice; the views
are what a rebuild from the log gives (``--verify`` rebuilds ``job_status`` from the log
alone and compares).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from adapters.postgres.backend import EVENTS_TABLE
from adapters.postgres.store import PostgresViewStore
from bench.projection_rebuild import COPY_EVENTS, COUNT_EVENTS, JOB_TOPIC, TOPIC, _encode, _stamp
from projections.events import RawRow, decode_page
from projections.memory import MemoryView
from projections.model import View
from projections.rebuild import rebuild, verify
from projections.registry import VIEWS

WAVE = 2_000
"""Jobs alive at once: each job's events are spread over a wave of interleaved lives."""
PAGE = 20_000
"""Rows decoded and folded at a time."""
BEATS = 17
ERRORS = ("Timeout", "connection reset by peer", "HTTP 503 from the payments API",
          "ValueError: amount must be positive")

Life = list[tuple[str, dict[str, Any]]]


def job_life(n: int) -> Life:
    """Job ``n``'s events without timestamps: 20 (one in ten: 23, failing once)."""
    worker = f"worker-{n % 50}"
    life: Life = [
        ("Enqueued", {"originator_topic": JOB_TOPIC, "customer_id": f"customer-{n % 97}",
                      "queue": ("default", "emails", "reports")[n % 3],
                      "payload": {"invoice": n}, "max_attempts": 3, "idempotency_key": None,
                      "priority": 0, "run_at": None}),
        ("Claimed", {"attempt": 1, "worker_id": worker, "worker_time": None}),
    ]
    attempt = 1
    if n % 10 == 0:
        error = f"invoice {n} not found" if n % 100 == 0 else ERRORS[(n // 10) % len(ERRORS)]
        life += [_beat(1, worker)] * 8 + [
            ("Failed", {"attempt": 1, "worker_id": worker, "error": error,
                        "worker_time": None}),
            ("Requeued", {"attempt": 1, "reason": "failed", "not_before": None}),
            ("Claimed", {"attempt": 2, "worker_id": worker, "worker_time": None}),
        ]
        attempt = 2
    life += [_beat(attempt, worker)] * (8 if attempt == 2 else BEATS)
    life.append(("Completed", {"attempt": attempt, "worker_id": worker, "result": None,
                               "worker_time": None}))
    return life


def _beat(attempt: int, worker: str) -> tuple[str, dict[str, Any]]:
    return ("HeartbeatRecorded", {"attempt": attempt, "worker_id": worker, "worker_time": None})


def generate(jobs: int, start: datetime) -> Iterator[tuple[uuid.UUID, int, str, bytes]]:
    """The rows of ``jobs`` jobs' lives, waves of ``WAVE`` jobs interleaved."""
    at = start
    for first in range(0, jobs, WAVE):
        wave = [(uuid.uuid4(), job_life(n)) for n in range(first, min(first + WAVE, jobs))]
        for step in range(max(len(life) for _, life in wave)):
            for job_id, life in wave:
                if step < len(life):
                    name, fields = life[step]
                    at += timedelta(microseconds=37)
                    yield job_id, step + 1, TOPIC[name], _encode(
                        {"timestamp": _stamp(at), **fields})


def write_and_fold(url: str, jobs: int, log: Callable[[str], object]) -> dict[str, MemoryView]:
    """COPY the jobs' events into the log while folding them into every view in memory."""
    memories = {name: MemoryView(view) for name, view in VIEWS.items()}
    position = 0
    page: list[RawRow] = []

    def fold() -> None:
        events, error = decode_page(page)
        if error is not None:
            raise error
        for memory in memories.values():
            memory.feed(events)
        page.clear()

    began = time.perf_counter()
    with psycopg.connect(url) as conn, conn.cursor() as cur, cur.copy(COPY_EVENTS) as copy:
        for row in generate(jobs, datetime(2026, 1, 5, 9, 0, tzinfo=UTC)):
            copy.write_row(row)
            position += 1
            page.append((position, str(row[0]), row[1], row[2], row[3]))
            if len(page) == PAGE:
                fold()
                if position % 1_000_000 < PAGE:
                    log(f"  {position:,} events written and folded: "
                        f"{time.perf_counter() - began:.0f} s")
        fold()
    with psycopg.connect(url, autocommit=True) as conn:
        found = conn.execute(COUNT_EVENTS).fetchone()
    if not found or int(found[0]) != position:
        raise RuntimeError(f"the log holds {found} events, {position} were written")
    return memories


def build_views(url: str, memories: dict[str, MemoryView], log: Callable[[str], object],
                began: float) -> None:
    """Each view rebuilt from its memory (as from a checkpoint) and the events after it."""
    store = PostgresViewStore(url, EVENTS_TABLE)
    reader = PostgresViewStore(url, EVENTS_TABLE)
    try:
        for name, view in VIEWS.items():
            memory = memories.pop(name)  # its rows are freed once written
            rebuild(store, view, reader=reader, start=_from(memory))
            log(f"  {name} built: {time.perf_counter() - began:.0f} s")
    finally:
        reader.close()
        store.close()


def _from(memory: MemoryView) -> Callable[[View, int], MemoryView]:
    def start(view: View, upto: int) -> MemoryView:
        assert memory.position <= upto, (memory.position, upto)
        return memory

    return start


def verify_job_status(url: str) -> bool:
    """``job_status`` as built here equals a rebuild from the whole log."""
    stores = [PostgresViewStore(url, EVENTS_TABLE) for _ in range(3)]
    try:
        result = verify(stores[0], stores[1], VIEWS["job_status"], reader=stores[2])
    finally:
        for store in stores:
            store.close()
    return result.ok
