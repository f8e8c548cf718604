"""The rate limiter's statements (issue 19, ADR 198), counted, not timed: one statement in
flight at a time, so the requests that arrive while it runs go together in the next one
(two in flight took a lone request each while the other ran), and on PostgreSQL a cursor
kept per connection and statement, so the array parameters' dumpers are chosen once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anyio
import psycopg
import pytest
from psycopg.types.array import ListBinaryDumper, ListDumper

from adapters.http.ratelimit import Limiter, Preset
from adapters.memory.counters import MemoryCounters
from adapters.postgres.http_api import PostgresCounters
from adapters.postgres.migrate import migrate
from ledger.ports.counters import Counted, Hit

PRESETS = {"worker": Preset("worker", 10**9, 60)}


class SlowCounters:
    """In-memory counters whose statements take ``seconds`` and are counted."""

    name = "slow"
    timeout = 5.0

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.statements = 0
        self._memory = MemoryCounters()

    async def hit(self, hits: Sequence[Hit]) -> list[Counted]:
        self.statements += 1
        await anyio.sleep(self.seconds)
        return self._memory.hit_now(hits)

    async def ping(self) -> None:
        return None

    async def cleanup(self, now: int) -> int:
        return 0

    async def close(self) -> None:
        return None


def test_requests_arriving_while_a_statement_runs_share_the_next_one() -> None:
    """40 requests, one per pass of the event loop, against 50 ms statements: 2
    statements (the first request's, then everyone who came meanwhile); 3 before (a
    second statement in flight took the second request alone)."""
    store = SlowCounters(0.05)

    async def scenario() -> list[bool]:
        limiter = Limiter(store, PRESETS)
        allowed: list[bool] = []

        async def one(index: int) -> None:
            allowed.append((await limiter.decide("worker", f"key:{index % 3}")).allowed)

        async with limiter.running(), anyio.create_task_group() as tg:
            for index in range(40):
                tg.start_soon(one, index)
                await anyio.lowlevel.checkpoint()
        return allowed

    assert anyio.run(scenario) == [True] * 40
    assert store.statements == 2


def counter(monkeypatch: pytest.MonkeyPatch, cls: Any, name: str) -> list[int]:
    calls = [0]
    original = getattr(cls, name)

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(cls, name, counted)
    return calls


@pytest.mark.postgres
def test_postgres_counters_keep_a_cursor_and_its_dumpers(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """20 statements after the first: no new cursor and no array dumper chosen again (20
    cursors and 60 dumper upgrades before: a cursor per statement)."""
    migrate(postgres_url)
    store = PostgresCounters(postgres_url)

    async def scenario() -> list[Counted]:
        hits = [Hit("worker:key:kept", 0, 60, 10**9, 1)]
        found = [*await store.hit(hits)]
        cursors = counter(monkeypatch, psycopg.AsyncConnection, "cursor")
        upgrades = [counter(monkeypatch, cls, "upgrade") for cls in (ListDumper,
                                                                    ListBinaryDumper)]
        for _ in range(20):
            found += await store.hit(hits)
        await store.close()
        assert cursors[0] == 0
        assert sum(u[0] for u in upgrades) == 0
        return found

    counted = anyio.run(scenario)
    assert [c.admitted_now for c in counted] == [1] * 21
    assert counted[-1].admitted - counted[0].admitted == 20
