"""Where a console page's time goes, on a kept ledger (issue 15): each page's SQL with its
plan, and the rest (Python, HTTP) by difference.

``python -m bench.console_explain DIR [--gets N] [--page TEXT] [--plans]`` starts the
cluster ``python -m bench.console --keep DIR`` left, turns on ``auto_explain`` (ANALYZE,
BUFFERS) for every statement of new sessions, GETs each page ``N`` times as
``bench.console`` does, and prints per page the client's p50/p95, the summed SQL time of
the same requests (p50/p95, from the server's log) and, with ``--plans``, the plans of
its slowest request. The settings are reset before the cluster is stopped.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import time
from pathlib import Path

import httpx
import psycopg

from bench.common import pct
from bench.console import console_server, pages, signed_in
from bench.console_cluster import reused

DURATION = re.compile(r"duration: ([0-9.]+) ms")
SETTINGS = {
    "session_preload_libraries": "auto_explain",
    "auto_explain.log_min_duration": "0",
    "auto_explain.log_analyze": "on",
    "auto_explain.log_buffers": "on",
    "auto_explain.log_nested_statements": "on",
}


def configure(url: str, on: bool) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("LOAD 'auto_explain'")  # so its settings are known here
        for name, value in SETTINGS.items():
            if on:
                conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
            else:
                conn.execute(f"ALTER SYSTEM RESET {name}")
        conn.execute("SELECT pg_reload_conf()")


def one_get(client: httpx.Client, path: str, log: Path) -> tuple[float, float, str]:
    """The client's seconds, the SQL's milliseconds (summed) and the log of one GET."""
    start = log.stat().st_size
    began = time.perf_counter()
    client.get(path)
    took = time.perf_counter() - began
    time.sleep(0.05)  # the log is written by another process
    with log.open("rb") as handle:
        handle.seek(start)
        text = handle.read().decode(errors="replace")
    return took, sum(float(m) for m in DURATION.findall(text)), text


def explain(base: Path, gets: int, only: str | None, plans: bool) -> None:
    log = base / "postgres.log"
    with reused(base) as (url, _seeded):
        configure(url, on=True)
        try:
            with console_server(url) as (_times, base_url, key), \
                    contextlib.closing(signed_in(base_url, key)) as client:
                for name, paths in pages(url, gets + 1).items():
                    if only and only.lower() not in name.lower():
                        continue
                    turns = [paths] if isinstance(paths, str) else paths
                    client.get(turns[0])
                    runs = [one_get(client, turns[(n + 1) % len(turns)], log)
                            for n in range(gets)]
                    path = turns[0]
                    times = [r[0] for r in runs]
                    sql = [r[1] for r in runs]
                    print(f"{name} ({path}): client p50 {pct(times, .5) * 1000:.1f} ms, "
                          f"p95 {pct(times, .95) * 1000:.1f} ms; its SQL p50 "
                          f"{pct(sql, .5):.1f} ms, p95 {pct(sql, .95):.1f} ms")
                    if plans:
                        print(max(runs)[2])
        finally:
            configure(url, on=False)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("dir", type=Path, help="a cluster kept by bench.console --keep")
    parser.add_argument("--gets", type=int, default=20)
    parser.add_argument("--page", help="only the pages whose name holds this text")
    parser.add_argument("--plans", action="store_true", help="print the slowest GET's plans")
    args = parser.parse_args(argv)
    explain(args.dir, args.gets, args.page, args.plans)


if __name__ == "__main__":
    main()
