"""Exact rate limiting: fixed windows counted in the database, batched, with a fallback.

A request is a hit on a *bucket* (``preset:subject``, the subject being the API key's id or
the client's address) in the current window of its preset. Hits are decided by the
counter store in one atomic statement per batch (docs/adr/0031-exact-rate-limiting.md):
the store adds the hits of each bucket but never past the limit and says how many it
admitted, so N concurrent requests against a limit L admit exactly L, across every
process sharing the database.

Hits queue up while a statement is in flight and go together in the next one (group
commit, no timer: a lone request waits for one round trip, a flood for a few). If the
store fails (database unreachable, or slower than ``timeout``) the limiter decides on
in-memory counters, logs that once, reports it (``/health`` shows "degraded"), and probes
the database every ``retry_interval`` seconds until it answers again.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from adapters.memory.counters import MemoryCounters
from adapters.service.metrics import (
    RATE_LIMIT_DECISIONS,
    RATE_LIMIT_FALLBACKS,
    RATE_LIMIT_STATEMENTS,
)
from ledger.ports.counters import Counted, CounterStore, Hit
from ledger.tally import TallyCounter

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Preset:
    """A limit: at most ``limit`` requests per fixed window of ``window_seconds``."""

    name: str
    limit: int
    window_seconds: int

    @property
    def policy_header(self) -> str:
        """The IETF ``RateLimit-Policy`` item: ``"public";q=100;w=60``."""
        return f'"{self.name}";q={self.limit};w={self.window_seconds}'


def default_presets(worker_per_minute: int = 600_000, service_per_minute: int = 60_000) -> dict[
    str, Preset
]:
    """The deployment's presets, plus the generous machine presets (configurable)."""
    presets = (
        Preset("public", 100, 60),
        Preset("auth", 5, 15 * 60),
        Preset("staff", 30, 60),
        Preset("admin", 10, 60),
        Preset("worker", worker_per_minute, 60),
        Preset("service", service_per_minute, 60),
    )
    return {p.name: p for p in presets}


@dataclass(frozen=True, slots=True)
class Decision:
    """One request's answer, with what its headers say."""

    preset: Preset
    allowed: bool
    remaining: int
    reset_at: int
    """When the window ends (epoch seconds)."""
    decided_at: float
    source: str
    """``database`` or ``memory`` (the fallback)."""

    @property
    def reset_after(self) -> int:
        """Whole seconds until the window ends (at least 1 while it has not)."""
        return max(1, math.ceil(self.reset_at - self.decided_at))

    def header_pairs(self) -> list[tuple[bytes, bytes]]:
        """:meth:`headers` as ASGI header pairs."""
        return [(name, value.encode()) for name, value in zip(
            _HEADER_NAMES, self.headers().values(), strict=False)]

    def headers(self) -> dict[str, str]:
        preset = self.preset
        headers = {
            "X-RateLimit-Limit": str(preset.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_at),
            "RateLimit-Policy": preset.policy_header,
            "RateLimit": f'"{preset.name}";r={self.remaining};t={self.reset_after}',
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.reset_after)
        return headers


_HEADER_NAMES = (b"X-RateLimit-Limit", b"X-RateLimit-Remaining", b"X-RateLimit-Reset",
                 b"RateLimit-Policy", b"RateLimit", b"Retry-After")
"""The names :meth:`Decision.headers` gives, in its order, encoded once."""


@dataclass(eq=False)
class _Waiting:
    hit_bucket: str
    preset: Preset
    window_start: int
    tally_subject: str
    done: anyio.Event = field(default_factory=anyio.Event)
    decision: Decision | None = None


@dataclass
class LimiterStatus:
    """What ``/health`` and ``/metrics`` say about the limiter."""

    source: str
    fallback_since: datetime | None
    last_error: str | None


class Limiter:
    """Decides requests against presets; see the module docstring."""

    def __init__(
        self,
        store: CounterStore | None,
        presets: Mapping[str, Preset] | None = None,
        *,
        clock: Callable[[], float] = time.time,
        tallies: TallyCounter | None = None,
        retry_interval: float = 1.0,
        cleanup_interval: float = 60.0,
        concurrency: int = 1,
        max_batch: int = 2000,
    ) -> None:
        self.presets = dict(presets or default_presets())
        self._store = store
        self._memory = MemoryCounters()
        self._clock = clock
        self.tallies = tallies
        self._retry_interval = retry_interval
        self._cleanup_interval = cleanup_interval
        self._concurrency = concurrency
        self._max_batch = max_batch
        self._fallback_since: datetime | None = None
        self._last_error: str | None = None
        self._send: MemoryObjectSendStream[_Waiting] | None = None
        self.decisions = 0
        self.batches = 0

    # -- deciding ---------------------------------------------------------------------

    @property
    def on_fallback(self) -> bool:
        return self._store is None or self._fallback_since is not None

    @property
    def database_unreachable(self) -> bool:
        """True while the shared counters' database does not answer (not for a limiter
        that has no database)."""
        return self._store is not None and self._fallback_since is not None

    @property
    def status(self) -> LimiterStatus:
        source = "memory" if self.on_fallback else "database"
        return LimiterStatus(source, self._fallback_since, self._last_error)

    async def decide(self, preset_name: str, subject: str, tally_subject: str = "") -> Decision:
        """Count one request of ``subject`` under the preset and say if it may go on."""
        preset = self.presets[preset_name]
        now = self._clock()
        start = int(now) - int(now) % preset.window_seconds
        waiting = _Waiting(f"{preset.name}:{subject}", preset, start, tally_subject or subject)
        if self._send is None or self.on_fallback:
            self._settle([waiting], self._memory.hit_now(_hits([waiting])), "memory")
        else:
            self._send.send_nowait(waiting)
            await waiting.done.wait()
        assert waiting.decision is not None
        return waiting.decision

    def _settle(self, batch: Sequence[_Waiting], counted: Sequence[Counted], source: str) -> None:
        """Hand each waiting request its decision (the first ``admitted_now`` of a bucket
        in arrival order are admitted); the metrics and tallies are counted once per
        bucket and outcome, not once per request."""
        by_bucket: dict[tuple[str, int], list[_Waiting]] = {}
        for waiting in batch:
            by_bucket.setdefault((waiting.hit_bucket, waiting.window_start), []).append(waiting)
        now = self._clock()
        at = datetime.fromtimestamp(now, UTC)
        counts: dict[tuple[str, str, bool], int] = {}
        for group, result in zip(by_bucket.values(), counted, strict=True):
            first = result.admitted - result.admitted_now
            for index, waiting in enumerate(group):
                preset = waiting.preset
                allowed = index < result.admitted_now
                used = first + index + 1 if allowed else result.admitted
                waiting.decision = Decision(
                    preset=preset,
                    allowed=allowed,
                    remaining=max(0, preset.limit - used),
                    reset_at=waiting.window_start + preset.window_seconds,
                    decided_at=now,
                    source=source,
                )
                key = (waiting.tally_subject, preset.name, allowed)
                counts[key] = counts.get(key, 0) + 1
                waiting.done.set()
        for (subject, preset_name, allowed), times in counts.items():
            _decided(preset_name, allowed, source).inc(times)
            if self.tallies is not None:
                self.tallies.count(subject, preset_name, admitted=allowed, at=at, times=times)
        self.decisions += len(batch)

    # -- running ----------------------------------------------------------------------

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Limiter]:
        """Run the batching workers, the database probe and the cleanup while open."""
        send, receive = anyio.create_memory_object_stream[_Waiting](math.inf)
        try:
            async with anyio.create_task_group() as tg:
                self._start(tg, receive)
                self._send = send
                try:
                    yield self
                finally:
                    self._send = None
                    send.close()
                    tg.cancel_scope.cancel()
        finally:
            await self._stop(receive)

    async def _stop(self, receive: MemoryObjectReceiveStream[_Waiting]) -> None:
        """Decide in memory whatever is still queued; close the store's connections."""
        leftover: list[_Waiting] = []
        while True:
            try:
                leftover.append(receive.receive_nowait())
            except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                break
        if leftover:
            self._settle(leftover, self._memory.hit_now(_hits(leftover)), "memory")
        receive.close()
        if self._store is not None:
            with anyio.CancelScope(shield=True), anyio.move_on_after(2):
                await self._store.close()

    def _start(self, tg: TaskGroup, receive: MemoryObjectReceiveStream[_Waiting]) -> None:
        if self._store is not None:
            for _ in range(self._concurrency):
                tg.start_soon(self._work, receive.clone())
            tg.start_soon(self._probe)
        tg.start_soon(self._cleanup)

    async def _work(self, receive: MemoryObjectReceiveStream[_Waiting]) -> None:
        async with receive:
            async for first in receive:
                batch = [first]
                while len(batch) < self._max_batch:
                    try:
                        batch.append(receive.receive_nowait())
                    except anyio.WouldBlock:
                        break
                await self._commit(batch)

    async def _commit(self, batch: list[_Waiting]) -> None:
        hits = _hits(batch)
        store = self._store
        if store is not None and not self.on_fallback:
            try:
                with anyio.fail_after(store.timeout):
                    counted = await store.hit(hits)
            except Exception as error:  # unreachable, timed out, or broken: fall back
                self._fall_back(error)
            else:
                self.batches += 1
                RATE_LIMIT_STATEMENTS.inc()
                self._settle(batch, counted, "database")
                return
        self._settle(batch, self._memory.hit_now(hits), "memory")

    def _fall_back(self, error: BaseException) -> None:
        self._last_error = f"{type(error).__name__}: {error}".strip()
        if self._fallback_since is None:
            self._fallback_since = datetime.now(UTC)
            RATE_LIMIT_FALLBACKS.inc()
            log.warning(
                "rate limiter: the database is unreachable (%s); deciding on in-memory "
                "counters (per process) until it answers again", self._last_error,
            )

    async def _probe(self) -> None:
        assert self._store is not None
        while True:
            await anyio.sleep(self._retry_interval)
            if self._fallback_since is None:
                continue
            try:
                with anyio.fail_after(self._store.timeout):
                    await self._store.ping()
            except Exception as error:
                self._last_error = f"{type(error).__name__}: {error}".strip()
                continue
            down_for = datetime.now(UTC) - self._fallback_since
            self._fallback_since = None
            self._last_error = None
            log.warning(
                "rate limiter: the database answers again after %.1fs; counters are shared "
                "again", down_for.total_seconds(),
            )

    async def _cleanup(self) -> None:
        while True:
            await anyio.sleep(self._cleanup_interval)
            now = int(self._clock())
            self._memory.cleanup_now(now)
            if self._store is None or self.on_fallback:
                continue
            try:
                with anyio.fail_after(max(self._store.timeout, 5.0)):
                    await self._store.cleanup(now)
            except Exception as error:
                log.info("rate limiter: cleanup of old windows failed: %s", error)


@functools.cache
def _decided(preset: str, allowed: bool, source: str) -> Any:
    """The decisions counter's child for these labels (looked up once, not per request;
    presets and sources are a fixed few)."""
    return RATE_LIMIT_DECISIONS.labels(preset, "admitted" if allowed else "refused", source)


def _hits(batch: Sequence[_Waiting]) -> list[Hit]:
    """One :class:`Hit` per bucket and window, in order of first arrival."""
    counts: dict[tuple[str, int], list[int]] = {}
    for waiting in batch:
        key = (waiting.hit_bucket, waiting.window_start)
        entry = counts.get(key)
        if entry is None:
            preset = waiting.preset
            counts[key] = [preset.limit, waiting.window_start + preset.window_seconds, 1]
        else:
            entry[2] += 1
    return [
        Hit(bucket, start, end, limit, count)
        for (bucket, start), (limit, end, count) in counts.items()
    ]


__all__ = [
    "Counted",
    "CounterStore",
    "Decision",
    "Hit",
    "Limiter",
    "LimiterStatus",
    "MemoryCounters",
    "Preset",
    "default_presets",
]
