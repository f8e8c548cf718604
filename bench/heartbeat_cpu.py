"""CPU per heartbeat request of the API processes (issue 19, ADR 198): one heartbeat per
request against ``ledger serve --api-only --processes 2``, the API children's CPU time
(from /proc) over the requests they answered, and the same for ``GET /health/live`` (the
HTTP stack's floor).

``python -m bench.heartbeat_cpu [--quick] [--base REF] [--profile FILE]`` starts a
throwaway PostgreSQL (or uses ``DATABASE_URL``). With ``--base REF`` the server of that
commit (its tree exported into a temporary directory) and this checkout's server take
turns, round after round, on the same machine under the same load, so their ratio is
measured in one run; ``--profile FILE`` records one API child of this checkout with
py-spy (raw collapsed stacks) during an extra one-per-request phase and prints the
functions that take the most of each thread's samples. Writes
"## HTTP API: CPU per heartbeat request (issue 19, ADR 198)" in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from bench.http_api import Served, Size, machine, measure_load, serving, single_requests
from bench.http_api import write_section as write_doc_section
from bench.http_load import Load, Phase, encode, pct
from tests.support.pg import start_postgres

SECTION = "## HTTP API: CPU per heartbeat request (issue 19, ADR 198)"
DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
FULL = Size(6400, 6.0, 400_000, 64, 100, 0.0, 0, 0.0, 3)
QUICK = Size(3200, 3.0, 100_000, 32, 100, 0.0, 0, 0.0, 1)
TINY = Size(800, 1.0, 20_000, 8, 100, 0.0, 0, 0.0, 1)
PROCESSES = 2
LIVE = encode("GET", "/health/live")
OFFERED = 1500.0


@dataclass
class Figures:
    """Every round of one server (this checkout, or the base)."""

    heartbeat: list[Load] = field(default_factory=list)
    live: list[Load] = field(default_factory=list)
    loads: list[float] = field(default_factory=list)
    fixed: list[Load] = field(default_factory=list)
    """One heartbeat per request offered at ``OFFERED`` requests/s (open loop): both
    servers answer the same rate, so their batches are alike and the CPU per request
    compares even when a loaded machine makes the closed loops' rates differ."""
    per_statement: list[float] = field(default_factory=list)
    """Heartbeat requests decided by one statement of the limiter (servers that count)."""


def api_ms(load: Load) -> float:
    """The API children's CPU per request answered, in ms."""
    return sum(load.api_cpu) * load.seconds / max(load.requests, 1) * 1000


def median_by(loads: Sequence[Load], key: str) -> float:
    values = [api_ms(x) if key == "cpu" else x.rate if key == "rate"
              else pct(x.latencies, 0.99) for x in loads]
    return statistics.median(values) if values else 0.0


@contextmanager
def exported(ref: str | None) -> Iterator[Path | None]:
    """The tree of ``ref`` in a temporary directory (``None``: this checkout)."""
    if ref is None:
        yield None
        return
    root = Path(__file__).resolve().parents[1]
    where = Path(tempfile.mkdtemp(prefix="bench-base-"))
    try:
        archive = subprocess.run(["git", "archive", ref], cwd=root, check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(where)], input=archive, check=True)
        yield where
    finally:
        shutil.rmtree(where, ignore_errors=True)


def one_round(server: object, size: Size, root: Path | None, figures: Figures,
              profile: Path | None) -> None:
    with serving(server, size, False, PROCESSES, root) as served:  # type: ignore[arg-type]
        single = Phase("1 per request", single_requests(served, size.connections), 1)
        figures.loads.append(os.getloadavg()[0])
        before = limiter_statements(served)
        figures.heartbeat.append(measure_load(served, size, single))
        after = limiter_statements(served)
        if before is not None and after is not None:
            figures.per_statement.append(
                figures.heartbeat[-1].requests / max(after - before, 1))
        figures.live.append(measure_load(served, size, Phase("live", lambda _: LIVE, 1)))
        figures.fixed.append(measure_load(served, size, Phase(
            "offered", single_requests(served, size.connections), 1, OFFERED)))
        if profile is not None:
            record(served, size, single, profile)


STATEMENTS = re.compile(rb"^jobledger_rate_limit_statements_total (\S+)$", re.M)


def limiter_statements(served: Served) -> float | None:
    """The limiter's statements so far, summed over the API processes (each process's
    ``/metrics`` read on a kept connection it accepted); ``None`` when a server does not
    count them."""
    seen: dict[bytes, float] = {}
    for sock in served.kept:
        sock.sendall(encode("GET", "/metrics", key=served.key))
        stream = sock.makefile("rb")
        length, process = 0, b""
        stream.readline()
        while (line := stream.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
            elif name.lower() == b"x-served-by":
                process = value.strip()
        body = stream.read(length)
        stream.close()
        found = STATEMENTS.search(body)
        if found is None:
            return None
        seen[process] = float(found.group(1))
    return sum(seen.values())


def record(served: Served, size: Size, phase: Phase, out: Path) -> None:
    """py-spy (raw, with idle frames left out) of the first API child during ``phase``."""
    spy = shutil.which("py-spy")
    if spy is None:
        print("py-spy is not installed: no profile", flush=True)
        return
    seconds = max(1, int(size.seconds) - 1)
    spying = subprocess.Popen(
        [spy, "record", "--pid", str(served.api_pids[0]), "--duration", str(seconds),
         "--format", "raw", "--output", str(out), "--threads", "--rate", "250"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(0.5)
    measure_load(served, size, phase)
    spying.wait(seconds + 60)
    if out.exists():
        print("\n".join(top_frames(out.read_text())), flush=True)


def top_frames(raw: str, count: int = 25) -> list[str]:
    """Per thread, the functions with the largest share of its samples (inclusive)."""
    threads: Counter[str] = Counter()
    inclusive: dict[str, Counter[str]] = {}
    for line in raw.splitlines():
        stack, _, samples = line.rpartition(" ")
        frames = stack.split(";")
        thread = frames[0]
        threads[thread] += int(samples)
        seen = set()
        for frame in frames[1:]:
            name = frame.split(" (")[0] + " " + frame.rsplit("/", 1)[-1].split(":")[0]
            if name not in seen:
                seen.add(name)
                inclusive.setdefault(thread, Counter())[name] += int(samples)
    out = []
    total = sum(threads.values()) or 1
    for thread, n in threads.most_common(3):
        out.append(f"{thread}: {n / total:.0%} of samples")
        out += [f"  {m / n:5.0%} {name}" for name, m in inclusive[thread].most_common(count)]
    return out


def per_statement(figures: Figures) -> str:
    if not figures.per_statement:
        return "not counted"
    return f"{statistics.median(figures.per_statement):.1f}"


def report(found: dict[str, Figures], info: list[str], size: Size) -> str:
    command = " ".join(["python -m bench.heartbeat_cpu", *sys.argv[1:]])
    lines = [
        SECTION, "",
        f"Produced by `{command}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: "
        f"`ledger serve --api-only --processes {PROCESSES}` on a fresh database per round, "
        f"one heartbeat per request ({size.connections} keep-alive connections, "
        f"{size.seconds:g} s closed loops), then `GET /health/live`; CPU is the API "
        "children's (from /proc) over the requests answered; servers take turns round "
        f"after round ({size.repeats} each), the figure is the median. The machine is "
        "shared (load average below): compare the ratio, not the absolute figures.",
        "", *info, "",
        "| server | API CPU per heartbeat request | heartbeats/s | p99 ms | "
        "API CPU per /health/live | heartbeat minus floor | requests per limiter statement | "
        f"API CPU per request at {OFFERED:,.0f}/s offered (p99 ms) | load average |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, figures in found.items():
        cpu, floor = median_by(figures.heartbeat, "cpu"), median_by(figures.live, "cpu")
        lines.append(
            f"| {name} | {cpu:.3f} ms | {median_by(figures.heartbeat, 'rate'):,.0f} | "
            f"{median_by(figures.heartbeat, 'p99'):.1f} | {floor:.3f} ms | "
            f"{cpu - floor:.3f} ms | {per_statement(figures)} | "
            f"{median_by(figures.fixed, 'cpu'):.3f} ms ({median_by(figures.fixed, 'p99'):.1f}) | "
            + ", ".join(f"{x:.1f}" for x in figures.loads) + " |")
    if len(found) == 2:
        (_, base), (_, head) = found.items()
        ratio = median_by(head.heartbeat, "cpu") / max(median_by(base.heartbeat, "cpu"), 1e-9)
        fixed = median_by(head.fixed, "cpu") / max(median_by(base.fixed, "cpu"), 1e-9)
        lines += ["", f"- CPU per heartbeat request, this checkout over the base: "
                  f"{ratio:.2f}x in the closed loops, {fixed:.2f}x at {OFFERED:,.0f}/s offered; "
                  f"heartbeats/s {median_by(head.heartbeat, 'rate') / max(median_by(base.heartbeat, 'rate'), 1e-9):.2f}x."]  # noqa: E501
    lines += [
        "- Each round is a fresh server and database; a heartbeat request here carries no "
        "`Accept-Encoding`, so the compression middleware's compressor (made per request for "
        "clients that accept gzip, as httpx workers do; ADR 198) is not in these figures. "
        "The closed loops' CPU per request falls as batches grow with the rate; the open "
        "loop offers both servers the same rate.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.heartbeat_cpu", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short phases, one round")
    parser.add_argument("--tiny", action="store_true", help="the smallest (the suite's test)")
    parser.add_argument("--base", help="a commit whose server takes turns with this one's")
    parser.add_argument("--profile", type=Path, help="py-spy raw output of one API child")
    parser.add_argument("--rounds", type=int, help="rounds of each server (default: by size)")
    parser.add_argument("--output", type=Path, default=DOC, help="the markdown file to update")
    args = parser.parse_args(argv)
    size = TINY if args.tiny else QUICK if args.quick else FULL
    if args.rounds:
        size = replace(size, repeats=args.rounds)
    found: dict[str, Figures] = {}
    with start_postgres() as server, exported(args.base) as base_root:
        info = machine(server)
        servers = ([(f"base {args.base}", base_root)] if args.base else []) + [
            ("this checkout", None)]
        for turn in range(size.repeats):
            for name, root in servers:
                figures = found.setdefault(name, Figures())
                spy = args.profile if (turn == 0 and root is None) else None
                one_round(server, size, root, figures, spy)
                last = figures.heartbeat[-1]
                print(f"{name}: {api_ms(last):.3f} ms CPU/request, {last.rate:,.0f}/s, "
                      f"p99 {pct(last.latencies, 0.99):.1f} ms, floor "
                      f"{api_ms(figures.live[-1]):.3f} ms, at {OFFERED:,.0f}/s offered "
                      f"{api_ms(figures.fixed[-1]):.3f} ms, requests per limiter statement "
                      f"{per_statement(figures)}", flush=True)
    section = report(found, info, size)
    write_doc_section(args.output, section, SECTION)
    print(f"\n{section}\nwrote {args.output}")


if __name__ == "__main__":
    main()
