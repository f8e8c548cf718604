"""The rate limiter's counters in this process only: the fallback, and the store of tests."""

from __future__ import annotations

from collections.abc import Sequence

from ledger.ports.counters import Counted, Hit


class MemoryCounters:
    """Counters in this process only: the fallback, and the store of tests."""

    name = "memory"
    timeout = 1.0

    def __init__(self) -> None:
        self._windows: dict[tuple[str, int], tuple[int, int]] = {}

    def hit_now(self, hits: Sequence[Hit]) -> list[Counted]:
        out = []
        for hit in hits:
            key = (hit.bucket, hit.window_start)
            admitted, _ = self._windows.get(key, (0, hit.window_end))
            after = max(admitted, min(admitted + hit.hits, hit.limit))
            self._windows[key] = (after, hit.window_end)
            out.append(Counted(after, after - admitted))
        return out

    async def hit(self, hits: Sequence[Hit]) -> list[Counted]:
        return self.hit_now(hits)

    async def ping(self) -> None:
        return None

    def cleanup_now(self, now: int) -> int:
        ended = [key for key, (_, end) in self._windows.items() if end < now]
        for key in ended:
            del self._windows[key]
        return len(ended)

    async def cleanup(self, now: int) -> int:
        return self.cleanup_now(now)

    async def close(self) -> None:
        self._windows.clear()
