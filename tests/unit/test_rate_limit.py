"""The limiter's decisions and headers, its fallback and recovery, on in-memory stores."""

from __future__ import annotations

from collections.abc import Sequence

import anyio
import pytest

from adapters.http.ratelimit import (
    Counted,
    Decision,
    Hit,
    Limiter,
    MemoryCounters,
    Preset,
    default_presets,
)
from ledger.tally import TallyCounter

NOW = 1_800_000_030.0  # 30 s into a minute


def test_the_deployments_presets() -> None:
    presets = default_presets()
    assert {(p.name, p.limit, p.window_seconds) for p in presets.values()} >= {
        ("public", 100, 60), ("auth", 5, 900), ("staff", 30, 60), ("admin", 10, 60),
    }
    assert presets["worker"].limit >= 100_000
    assert default_presets(worker_per_minute=7)["worker"].limit == 7


@pytest.mark.parametrize(
    ("allowed", "remaining", "expected"),
    [
        (True, 95, {
            "X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "95",
            "X-RateLimit-Reset": "1800000060", "RateLimit-Policy": '"public";q=100;w=60',
            "RateLimit": '"public";r=95;t=30',
        }),
        (False, 0, {
            "X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": "1800000060", "RateLimit-Policy": '"public";q=100;w=60',
            "RateLimit": '"public";r=0;t=30', "Retry-After": "30",
        }),
    ],
)
def test_headers(allowed: bool, remaining: int, expected: dict[str, str]) -> None:
    decision = Decision(Preset("public", 100, 60), allowed, remaining, 1_800_000_060, NOW, "x")
    assert decision.headers() == expected


def test_memory_counters_admit_up_to_the_limit_and_say_how_many() -> None:
    counters = MemoryCounters()
    first = counters.hit_now([Hit("a", 0, 60, 5, 3), Hit("b", 0, 60, 5, 1)])
    second = counters.hit_now([Hit("a", 0, 60, 5, 4)])
    assert first == [Counted(3, 3), Counted(1, 1)]
    assert second == [Counted(5, 2)]
    assert counters.cleanup_now(61) == 2
    assert counters.hit_now([Hit("a", 0, 60, 5, 1)]) == [Counted(1, 1)]


async def _decisions(limiter: Limiter, count: int, subject: str = "s") -> list[Decision]:
    out: list[Decision] = []

    async def one() -> None:
        out.append(await limiter.decide("p", subject))

    async with limiter.running(), anyio.create_task_group() as tg:
        for _ in range(count):
            tg.start_soon(one)
    return out


def test_a_batch_admits_in_order_and_hands_out_each_remaining_count_once() -> None:
    limiter = Limiter(MemoryCounters(), {"p": Preset("p", 10, 60)}, clock=lambda: NOW)
    decisions = anyio.run(_decisions, limiter, 25)
    admitted = [d for d in decisions if d.allowed]
    assert len(admitted) == 10
    assert sorted(d.remaining for d in admitted) == list(range(10))
    assert all(d.remaining == 0 for d in decisions if not d.allowed)
    assert limiter.batches >= 1


def test_subjects_and_windows_are_counted_apart() -> None:
    now = [NOW]
    limiter = Limiter(MemoryCounters(), {"p": Preset("p", 2, 60)}, clock=lambda: now[0])

    async def scenario() -> list[bool]:
        async with limiter.running():
            results = [(await limiter.decide("p", s)).allowed for s in "aaab"]
            now[0] += 60  # the next window
            results.append((await limiter.decide("p", "a")).allowed)
            return results

    assert anyio.run(scenario) == [True, True, False, True, True]


class FlakyCounters(MemoryCounters):
    """A database that fails while ``down`` is set."""

    name = "flaky"
    timeout = 0.5

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    async def hit(self, hits: Sequence[Hit]) -> list[Counted]:
        if self.down:
            raise ConnectionRefusedError("database stopped")
        return await super().hit(hits)

    async def ping(self) -> None:
        if self.down:
            raise ConnectionRefusedError("database stopped")


def test_falls_back_to_memory_and_recovers(caplog: pytest.LogCaptureFixture) -> None:
    store = FlakyCounters()
    tallies = TallyCounter()
    limiter = Limiter(
        store, {"p": Preset("p", 3, 60)}, clock=lambda: NOW, retry_interval=0.02,
        tallies=tallies,
    )

    async def scenario() -> tuple[list[str], list[bool]]:
        async with limiter.running():
            sources = [(await limiter.decide("p", "s")).source]
            store.down = True
            refused = []
            for _ in range(4):
                decision = await limiter.decide("p", "s")
                sources.append(decision.source)
                refused.append(decision.allowed)
            assert limiter.database_unreachable
            assert limiter.status.source == "memory"
            store.down = False
            with anyio.fail_after(2):
                while limiter.on_fallback:
                    await anyio.sleep(0.01)
            sources.append((await limiter.decide("p", "s")).source)
            return sources, refused

    sources, allowed = anyio.run(scenario)
    assert sources == ["database", "memory", "memory", "memory", "memory", "database"]
    assert allowed == [True, True, True, False]  # memory counts its own window from zero
    warnings = [r.getMessage() for r in caplog.records if "in-memory counters" in r.getMessage()]
    assert len(warnings) == 1
    assert tallies.pending == 1  # one subject, preset and minute


def test_without_a_store_it_decides_in_memory() -> None:
    limiter = Limiter(None, {"p": Preset("p", 1, 60)}, clock=lambda: NOW)
    decisions = anyio.run(_decisions, limiter, 3)
    assert [d.allowed for d in decisions].count(True) == 1
    assert {d.source for d in decisions} == {"memory"}
    assert not limiter.database_unreachable
