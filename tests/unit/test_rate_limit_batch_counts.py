"""The limiter counts its metrics and tallies once per bucket and outcome of a batch (not
once per request), with the same totals; its header pairs are its headers, encoded."""

from __future__ import annotations

from datetime import UTC, datetime

import anyio

from adapters.http.ratelimit import Decision, Limiter, MemoryCounters, Preset
from adapters.service.metrics import RATE_LIMIT_DECISIONS
from ledger.tally import TallyCounter

NOW = 1_800_000_030.0


def _decided(result: str) -> float:
    return float(RATE_LIMIT_DECISIONS.labels("batchcount", result, "database")._value.get())


class Counting(TallyCounter):
    calls: int = 0

    def count(self, subject: str, preset: str, *, admitted: bool, at: datetime,
              times: int = 1) -> None:
        type(self).calls += 1
        super().count(subject, preset, admitted=admitted, at=at, times=times)


def test_a_batch_counts_each_outcome_once_with_the_same_totals() -> None:
    tallies = Counting()
    limiter = Limiter(MemoryCounters(), {"batchcount": Preset("batchcount", 10, 60)},
                      clock=lambda: NOW, tallies=tallies)
    before = _decided("admitted"), _decided("refused")

    async def scenario() -> list[bool]:
        out: list[bool] = []

        async def one() -> None:
            out.append((await limiter.decide("batchcount", "s")).allowed)

        async with limiter.running(), anyio.create_task_group() as tg:
            for _ in range(25):
                tg.start_soon(one)
        return out

    allowed = anyio.run(scenario)
    assert allowed.count(True) == 10
    assert (_decided("admitted") - before[0], _decided("refused") - before[1]) == (10, 15)
    assert Counting.calls <= 2 * limiter.batches  # per outcome of a batch, not per request
    (tally,) = tallies.flush(datetime.fromtimestamp(NOW + 60, UTC))
    assert (tally.admitted, tally.refused) == (10, 15)


def test_header_pairs_are_the_headers_encoded() -> None:
    for allowed in (True, False):
        decision = Decision(Preset("public", 100, 60), allowed, 3, 1_800_000_060, NOW, "x")
        assert decision.header_pairs() == [
            (k.encode(), v.encode()) for k, v in decision.headers().items()
        ]
