"""The log read in pages and read ahead on a thread (projections/pages.py), and the
replay's decoded events left out of the cyclic garbage collector."""

from __future__ import annotations

import gc
import threading
from contextlib import closing

import pytest
from eventsourcing.utils import get_topic

from ledger.job import Job
from projections.events import RawRow
from projections.pages import pages, prefetched
from projections.replay_events import decode_for_replay

BEAT = get_topic(Job.HeartbeatRecorded)
STATE = (
    b'{"timestamp": {"_type_": "datetime_iso", "_data_": "2026-12-01T03:00:00+00:00"}, '
    b'"attempt": 1, "worker_id": "w", "worker_time": null}'
)


class Log:
    """``read_events`` over positions 1..n; fails at ``broken`` if given."""

    def __init__(self, n: int, broken: int | None = None) -> None:
        self.n = n
        self.broken = broken
        self.reads: list[int] = []
        self.threads: set[str] = set()

    def read_events(self, after: int, limit: int, upto: int | None = None) -> list[RawRow]:
        self.reads.append(after)
        self.threads.add(threading.current_thread().name)
        if self.broken is not None and after >= self.broken:
            raise RuntimeError(f"the store failed after {after}")
        top = self.n if upto is None else min(upto, self.n)
        return [(p, "job", p, BEAT, STATE) for p in range(after + 1, min(after + limit, top) + 1)]


@pytest.mark.parametrize(("n", "after", "size", "upto"),
                         [(0, 0, 10, None), (95, 0, 10, None), (100, 0, 10, None),
                          (100, 37, 7, 90), (5, 5, 3, None)])  # fmt: skip
def test_prefetched_pages_are_the_pages_in_order(
    n: int, after: int, size: int, upto: int | None
) -> None:
    expected = list(pages(Log(n), after, size, upto))  # type: ignore[arg-type]
    log = Log(n)
    got = list(prefetched(log, after, size, upto))  # type: ignore[arg-type]
    assert got == expected
    last = n if upto is None else min(upto, n)
    assert [row[0] for page in got for row in page] == list(range(after + 1, last + 1))
    assert log.threads == {"log-reader"}  # read on the thread, never the caller's


def test_an_error_of_the_reading_thread_is_raised_in_the_caller() -> None:
    reading = prefetched(Log(1_000, broken=30), 0, 10)  # type: ignore[arg-type]
    seen = [row[0] for _ in range(3) for row in next(reading)]
    assert seen == list(range(1, 31))
    with pytest.raises(RuntimeError, match="failed after 30"):
        next(reading)


def test_closing_early_stops_the_reading_thread() -> None:
    log = Log(1_000_000)
    with closing(prefetched(log, 0, 10, ahead=2)) as reading:  # type: ignore[arg-type]
        first = next(reading)
    assert first[0][0] == 1
    assert not any(t.name == "log-reader" for t in threading.enumerate())
    assert len(log.reads) <= 4  # the page handed over, two queued, one waiting: no more


def test_the_replays_decoded_events_are_not_tracked_by_the_garbage_collector() -> None:
    """Millions of them per replay: tracked, the collector runs thousands of times over
    the pages in flight and more than doubles the replay's CPU."""
    event = decode_for_replay([(1, "job", 3, BEAT, STATE)])[0]
    assert event.body.attempt == 1  # type: ignore[attr-defined]
    assert not gc.is_tracked(event)
    assert not gc.is_tracked(event.body)
    assert not gc.is_tracked(event.body.timestamp)
