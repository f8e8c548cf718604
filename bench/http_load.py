"""The HTTP load generator of ``bench.http_api``: a minimal keep-alive HTTP/1.1 client on
asyncio (so the client is not the bottleneck), closed- and open-loop drivers, a ``/health``
prober meant for its own process, and CPU accounting from /proc."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import re
import socket
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import anyio


@dataclass
class Load:
    """What one load phase measured."""

    name: str
    requests: int = 0
    heartbeats: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    health: list[float] = field(default_factory=list)
    health_statuses: Counter[int] = field(default_factory=Counter)
    server_cpu: float = 0.0
    api_cpu: list[float] = field(default_factory=list)
    """Each API process's share of ``server_cpu`` (one entry per process)."""
    client_cpu: float = 0.0
    machine_cpu: float = 0.0
    gc: str = ""
    p99_runs: list[float] = field(default_factory=list)
    """p99 ms of every run of this phase (this one is the run with the median p99)."""
    health_p99_runs: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.heartbeats / self.seconds if self.seconds else 0.0


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e3 if ordered else 0.0


# -- a minimal HTTP/1.1 client ----------------------------------------------------------------


class Connection:
    """One keep-alive connection; requests are pre-encoded bytes."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def adopt(cls, sock: socket.socket) -> Connection:
        """This event loop's streams on a copy of ``sock``, an open connection kept across
        phases: closing them closes the copy, and ``sock`` stays connected."""
        reader, writer = await asyncio.open_connection(sock=sock.dup())
        return cls(reader, writer)

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    async def send(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        match = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
        body = await self.reader.readexactly(int(match.group(1))) if match else b""
        return status, body

    def close(self) -> None:
        self.writer.close()


def encode(method: str, path: str, body: bytes = b"", key: str | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    if key:
        lines.append(f"Authorization: Bearer {key}")
    if body:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def health_prober(port: int, seconds: float, interval: float, out: multiprocessing.Queue[
    tuple[list[float], dict[int, int]]
]) -> None:
    """A process that GETs /health every ``interval`` seconds on one connection."""
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    request = encode("GET", "/health")
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        stream = sock.makefile("rb")
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            started = time.perf_counter()
            sock.sendall(request)
            status = int(stream.readline()[9:12])
            length = 0
            while (line := stream.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            stream.read(length)
            latencies.append(time.perf_counter() - started)
            statuses[status] += 1
            time.sleep(interval)
    out.put((latencies, dict(statuses)))


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine spent busy (all CPUs), from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def server_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


@dataclass(frozen=True)
class Limits:
    """Bounds of one load phase."""

    connections: int
    seconds: float
    max_requests: int


@dataclass(frozen=True)
class Phase:
    """One load: requests ``make(n)`` of ``per_request`` heartbeats each, as fast as the
    connections go (``rate`` None) or due at ``rate`` requests/s. Connection ``k`` of
    ``C`` sends ``make(k), make(k + C), make(k + 2C), ...``, so a maker can keep each
    connection on its own jobs, as a worker keeps its own (with several API processes, a
    job's heartbeats then stay with one process's cache)."""

    name: str
    make: Callable[[int], bytes]
    per_request: int
    rate: float | None = None


async def drive(
    address: tuple[str, int], phase: Phase, load: Load, limits: Limits,
    kept: Sequence[socket.socket] = (),
) -> None:
    """Closed loop (no rate): each connection sends its next request when the last one
    is answered. Open loop (a rate): request ``n`` is due at ``start + n / rate`` whatever
    happened to the others, and its latency counts from when it was due (no coordinated
    omission). Connection ``k`` is ``kept[k]`` when given (the same connection in every
    phase, as a worker keeps its own: with several API processes its jobs then stay with
    one process's cache), else a new one."""
    total = limits.max_requests
    if phase.rate is not None:
        total = min(total, int(limits.seconds * phase.rate))
    end = time.monotonic() + limits.seconds
    next_index = [0]
    start = time.perf_counter() + 0.05

    async def connection(k: int) -> None:
        conn = await (Connection.adopt(kept[k]) if k < len(kept)
                      else Connection.open(*address))  # fmt: skip
        try:
            sent = 0
            while next_index[0] < total and time.monotonic() < end:
                n = next_index[0]
                next_index[0] += 1
                due = time.perf_counter()
                if phase.rate is not None:
                    due = start + n / phase.rate
                    if due > time.perf_counter():
                        await asyncio.sleep(due - time.perf_counter())
                status, _ = await conn.send(phase.make(k + limits.connections * sent))
                sent += 1
                load.latencies.append(time.perf_counter() - due)
                load.statuses[status] += 1
                load.requests += 1
                if status == 200:
                    load.heartbeats += phase.per_request
        finally:
            conn.close()

    async with anyio.create_task_group() as tg:
        for k in range(limits.connections):
            tg.start_soon(connection, k)
    load.seconds = time.perf_counter() - start


GcPauses = dict[str, tuple[float, float, dict[float, float]]]
"""Per generation: pauses, seconds in them, cumulative bucket counts by upper bound."""


def gc_pauses(port: int) -> GcPauses:
    """The server's GC pause histogram, from ``GET /metrics``."""
    from prometheus_client.parser import text_string_to_metric_families

    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(encode("GET", "/metrics"))
        stream = sock.makefile("rb")
        stream.readline()
        length = 0
        while (line := stream.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        text = stream.read(length).decode()
    found: GcPauses = {}
    for family in text_string_to_metric_families(text):
        if family.name != "jobledger_gc_pause_seconds":
            continue
        for sample in family.samples:
            generation = sample.labels.get("generation", "?")
            count, total, buckets = found.get(generation, (0.0, 0.0, {}))
            if sample.name.endswith("_count"):
                count = sample.value
            elif sample.name.endswith("_sum"):
                total = sample.value
            elif sample.name.endswith("_bucket"):
                buckets[float(sample.labels["le"])] = sample.value
            found[generation] = (count, total, buckets)
    return found


def gc_summary(before: GcPauses, after: GcPauses) -> str:
    """``gen2: 3 pauses, 120 ms in all, the longest <= 50 ms`` for what happened between."""
    parts = []
    for generation in sorted(after):
        count, total, buckets = after[generation]
        count0, total0, buckets0 = before.get(generation, (0.0, 0.0, {}))
        if count - count0 <= 0:
            continue
        grew = [le for le, n in sorted(buckets.items()) if n - buckets0.get(le, 0.0) > 0]
        below = [le for le in grew if buckets[le] - buckets0.get(le, 0.0) >= count - count0]
        longest = f"<= {below[0] * 1e3:g} ms" if below and below[0] != float("inf") else "> 500 ms"
        parts.append(
            f"gen{generation}: {count - count0:,.0f} pauses, {(total - total0) * 1e3:,.0f} ms, "
            f"longest {longest}"
        )
    return "; ".join(parts) or "none"
