"""A view as of a past moment (issue 16, ADR 90): ``job_status`` as of a position a million
events back, from a checkpoint every 100,000 events, and without checkpoints (the ratio).

``python -m bench.view_asof [--events N] [--back B] [--every E] [--quick]`` starts a
throwaway PostgreSQL (or uses ``DATABASE_URL``), writes a log of N job events with COPY
(the generator of :mod:`bench.projection_rebuild`), folds it in memory up to the cut
``P = N - B`` storing a checkpoint of ``job_status`` every E events on the way (as the
checkpointer part would have taken them), then times :func:`projections.asof.view_as_of`
at P with the checkpoints (newest at or before P, verified, plus the log after it) and
without them (the log from position 0), each a few times. Writes its section of
docs/benchmarks.md unless ``--no-doc``. ``python -m bench`` runs it too (:func:`run`).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import re
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adapters.postgres.backend import EVENTS_TABLE, postgres_env
from adapters.postgres.checkpoints import PostgresCheckpoints
from adapters.postgres.migrate import migrate
from adapters.postgres.store import PostgresViewStore
from bench.projection_rebuild import write_log
from ledger.application import JobLedger
from projections.asof import view_as_of
from projections.checkpoints import CHUNK_ROWS, Checkpoint, encode_chunk, format_version
from projections.events import decode_page
from projections.memory import MemoryView
from projections.registry import get_view
from tests.support.pg import PostgresServer, start_postgres

SECTION = "## A view as of a past moment"
DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
PAGE = 20_000


@dataclass(frozen=True)
class Size:
    events: int
    back: int
    every: int
    repeats: int


FULL = Size(2_000_000, 1_000_001, 100_000, 3)
"""The cut at 999,999: 99,999 events past the newest checkpoint (the worst case)."""
QUICK = Size(40_000, 20_001, 4_000, 2)
TINY = Size(8_000, 4_001, 1_000, 1)


def store_checkpoint(store: PostgresCheckpoints, memory: MemoryView) -> Checkpoint:
    """Write ``memory`` as a checkpoint, chunked and hashed as :func:`take` does."""
    view, checkpoint_id = memory.view, str(uuid.uuid4())
    digest, rows, size, seq = hashlib.sha256(), 0, 0, 0
    for table in view.tables:
        all_rows = memory.table(table.name)
        for start in range(0, len(all_rows), CHUNK_ROWS):
            chunk = all_rows[start:start + CHUNK_ROWS]
            data = encode_chunk(table, chunk)
            store.write_chunk(checkpoint_id, seq, data)
            digest.update(data)
            rows, size, seq = rows + len(chunk), size + len(data), seq + 1
    made = Checkpoint(checkpoint_id, view.name, memory.position, 0, datetime.now(UTC), rows,
                      size, digest.hexdigest(), format_version(view))
    store.publish(made)
    return made


def checkpoints_on_the_way(url: str, upto: int, every: int) -> list[Checkpoint]:
    """Fold ``job_status`` up to ``upto``, storing a checkpoint every ``every`` events."""
    store, checkpoints = PostgresViewStore(url, EVENTS_TABLE), PostgresCheckpoints(url)
    memory, made, after, due = MemoryView(get_view("job_status")), [], 0, every
    try:
        while after < upto:
            page = store.read_events(after, min(PAGE, due - after, upto - after), upto)
            if not page:
                break
            events, failure = decode_page(page)
            assert failure is None, failure
            memory.feed(events)
            after = page[-1][0]
            if after >= due:
                made.append(store_checkpoint(checkpoints, memory))
                due += every
    finally:
        checkpoints.close()
        store.close()
    return made


def timed(url: str, position: int, with_checkpoints: bool, repeats: int) -> tuple[float, int, int]:
    """Median seconds of the view as of ``position``; rows and events folded."""
    store = PostgresViewStore(url, EVENTS_TABLE)
    checkpoints = PostgresCheckpoints(url) if with_checkpoints else None
    times, rows, folded = [], 0, 0
    try:
        for _ in range(repeats):
            started = time.perf_counter()
            result = view_as_of(store, checkpoints, get_view("job_status"), position)
            times.append(time.perf_counter() - started)
            assert not result.refused
            rows, folded = len(result.memory.rows["job_status"]), result.folded
    finally:
        if checkpoints is not None:
            checkpoints.close()
        store.close()
    return statistics.median(times), rows, folded


def run(server: PostgresServer, size: Size) -> dict[str, Any]:
    """The log, its checkpoints and both timings in a database of ``server`` (dropped)."""
    cut = size.events - size.back
    name = f"bench_asof_{uuid.uuid4().hex[:8]}"
    url = server.create_database(name)
    try:
        JobLedger(postgres_env(url)).close()  # eventsourcing's tables
        migrate(url)
        print(f"writing {size.events:,} events ...", flush=True)
        wrote = write_log(url, size.events)
        started = time.perf_counter()
        made = checkpoints_on_the_way(url, cut, size.every)
        print(f"  written in {wrote:.1f}s; {len(made)} checkpoints up to {cut:,} in "
              f"{time.perf_counter() - started:.1f}s", flush=True)
        fast = timed(url, cut, True, size.repeats)
        slow = timed(url, cut, False, size.repeats)
    finally:
        server.drop_database(name)
    newest = made[-1] if made else None
    ratio = slow[0] / fast[0] if fast[0] else float("inf")
    print(f"as of @{cut:,} from the checkpoint at {newest.position if newest else 0:,}: "
          f"{fast[0]:.3f}s ({fast[2]:,} events folded, {fast[1]:,} rows)")
    print(f"as of @{cut:,} from position 0: {slow[0]:.3f}s ({slow[2]:,} events); "
          f"ratio {ratio:.1f}x")
    return {"size": size, "cut": cut, "newest": newest, "fast": fast, "slow": slow,
            "ratio": ratio}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small log (seconds)")
    parser.add_argument("--events", type=int)
    parser.add_argument("--back", type=int)
    parser.add_argument("--every", type=int)
    parser.add_argument("--no-doc", action="store_true", help="Do not write docs/benchmarks.md")
    args = parser.parse_args(argv)
    size = QUICK if args.quick else FULL
    size = Size(args.events or size.events, args.back or size.back, args.every or size.every,
                size.repeats)
    command = "python -m bench.view_asof" + "".join(
        f" {a}" for a in (argv if argv is not None else sys.argv[1:])
    )
    with start_postgres() as server:
        figures = run(server, size)
    if not args.no_doc:
        write_section(DOC, section(command, figures))
        print(f"wrote the '{SECTION}' section of {DOC}")
    return figures


def section(command: str, figures: dict[str, Any]) -> str:
    return _section(command, figures["size"], figures["cut"], figures["newest"],
                    fast=figures["fast"], slow=figures["slow"], ratio=figures["ratio"])


def _section(
    command: str, size: Size, cut: int, newest: Checkpoint | None, *,
    fast: tuple[float, int, int], slow: tuple[float, int, int], ratio: float,
) -> str:
    mb = (newest.byte_count / 1e6) if newest else 0.0
    return "\n".join([
        SECTION, "",
        f"Produced by `{command}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} "
        f"CPUs shared with other work (load average {os.getloadavg()[0]:.1f} at the end), "
        "PostgreSQL on the same machine.", "",
        f"A log of {size.events:,} job events; `job_status` as of position {cut:,} "
        f"({size.back:,} events back from the head), median of {size.repeats} runs. "
        f"Checkpoints every {size.every:,} events; the newest at or before the cut is at "
        f"{newest.position if newest else 0:,} ({newest.row_count if newest else 0:,} rows, "
        f"{mb:.1f} MB compressed), verified (SHA-256, decode) on every use.", "",
        "| path | events folded | seconds |",
        "|---|---:|---:|",
        f"| newest checkpoint + the log after it | {fast[2]:,} | **{fast[0]:.3f}** |",
        f"| no checkpoint: the log from position 0 | {slow[2]:,} | {slow[0]:.3f} |",
        "",
        f"Ratio: **{ratio:.1f}x**; the bar is < 2 s with checkpoints. Both give "
        f"{fast[1]:,} jobs.", "",
    ])


def write_section(path: Path, section: str) -> None:
    """Replace this benchmark's section of ``path`` (or append it), leaving the rest."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.M | re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: section.rstrip("\n") + "\n\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
    path.write_text(text)


if __name__ == "__main__":
    main()
