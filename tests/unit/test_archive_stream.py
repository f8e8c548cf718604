"""Merging archived events is streamed (ADR 112): a history archived in many overlapping
segments reads back in log order while holding only the frames that span the merge's
position, not every archived event; an as-of read pages through it the same way."""

from __future__ import annotations

import functools
import random
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.archive import segment, stream
from adapters.service.archive_replay import ArchiveAwareLog, segment_rows
from ledger.ports.archive import SegmentRecord

Row = segment.RawEvent


def history(events: int, running: int, length: int, seed: int = 7) -> dict[str, list[Row]]:
    """A log of ``events`` events: ``running`` jobs at a time, each ``length`` events
    long, interleaved at random (a new job starts when one ends)."""
    rng = random.Random(seed)
    jobs: dict[str, list[Row]] = {}
    active = [f"job-{n}" for n in range(running)]
    started = running
    for position in range(1, events + 1):
        slot = rng.randrange(running)
        job = active[slot]
        stream_ = jobs.setdefault(job, [])
        stream_.append((position, job, len(stream_) + 1, "Topic", b"%0120d" % position))
        if len(stream_) == length:
            active[slot] = f"job-{started}"
            started += 1
    return jobs


class Segments:
    """Segments in memory: a :class:`SegmentStore` and the manifest's records."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.records: list[SegmentRecord] = []

    def archive(self, jobs: dict[str, list[Row]], window: int, frame_events: int) -> None:
        """One segment per ``window`` positions of the jobs' last events (an archive run
        archives the jobs that ended since the previous one)."""
        by_window: dict[int, dict[str, list[Row]]] = {}
        for job, rows in jobs.items():
            by_window.setdefault(rows[-1][0] // window, {})[job] = rows
        previous = ""
        for seq, key in enumerate(sorted(by_window), start=1):
            built = segment.build(seq, previous, by_window[key], frame_events=frame_events)
            name = f"{seq:08d}.seg"
            self.data[name] = built.data
            index = built.index
            self.records.append(SegmentRecord(
                seq, name, index.first_position, index.last_position, index.job_count,
                index.event_count, len(built.data), built.sha256, previous,
                datetime(2026, 1, 1, tzinfo=UTC)))
            previous = built.sha256

    def describe(self) -> str:
        return "memory"

    def put(self, name: str, data: bytes) -> None:
        self.data[name] = data

    def get(self, name: str) -> bytes:
        return self.data[name]

    def get_range(self, name: str, offset: int, length: int) -> bytes:
        return self.data[name][offset:offset + length]

    def close(self) -> None:
        pass


def archived(events: int = 30_000) -> tuple[Segments, list[Row]]:
    jobs = history(events, running=20, length=30)
    ended = {j: rows for j, rows in jobs.items() if len(rows) == 30}
    store = Segments()
    store.archive(ended, window=1_000, frame_events=100)
    return store, sorted(r for rows in ended.values() for r in rows)


def test_many_overlapping_segments_read_back_in_log_order() -> None:
    store, every = archived()
    assert len(store.records) > 20
    assert any(a.last_position > b.first_position
               for a, b in zip(store.records, store.records[1:], strict=False))
    assert list(segment_rows(store, store.records)) == every


def frames_of(data: bytes) -> Iterator[list[Row]]:
    return segment.events(data, segment.read_index(data))


def test_the_merge_holds_the_running_jobs_frames_not_the_history() -> None:
    def peak(events: int) -> tuple[int, int]:
        store, every = archived(events)
        merged = stream.InOrder([stream.Source(r.first_position, functools.partial(
            frames_of, store.get(r.name))) for r in store.records])
        assert sum(1 for _ in merged) == len(every)
        return merged.peak, len(every)

    (short, short_total), (long, long_total) = peak(15_000), peak(60_000)
    assert long_total > 3 * short_total
    assert long < 1.5 * short, (long, short)  # the concurrency's frames, not the history
    assert long < long_total / 10, (long, long_total)


def test_streaming_the_archive_allocates_a_fraction_of_holding_it() -> None:
    store, every = archived()

    def peak(read: Any) -> int:
        tracemalloc.start()
        try:
            read()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    def held_at_once() -> None:  # the behaviour before ADR 112: every frame decoded first
        frames: list[list[Row]] = []
        for record in store.records:
            data = store.get(record.name)
            frames.extend(segment.events(data, segment.verify(data, record.sha256)))
        assert sum(len(f) for f in frames) == len(every)

    def streamed() -> None:
        assert sum(1 for _ in segment_rows(store, store.records)) == len(every)

    before, after = peak(held_at_once), peak(streamed)
    assert after * 8 < before, (after, before)


def test_frames_out_of_order_are_refused() -> None:
    frames = [[(p, "a", 1, "T", b"")] for p in (1, 5, 6, 2)]
    merged = stream.InOrder([stream.Source(1, lambda: iter(frames))])
    with pytest.raises(stream.FramesOutOfOrder):
        list(merged)


class HotLog:
    def __init__(self, rows: list[Row]) -> None:
        self.rows = rows

    def read_events(self, after: int, limit: int, upto: int | None = None) -> list[Row]:
        return [r for r in self.rows if r[0] > after and (upto is None or r[0] <= upto)][:limit]


class Backend:
    def __init__(self, records: list[SegmentRecord]) -> None:
        self.records = records

    def archive(self) -> Backend:
        return self

    def segments(self) -> list[SegmentRecord]:
        return self.records

    def close(self) -> None:
        pass


@pytest.mark.parametrize(("limit", "upto"), [(97, None), (1_000, 20_000), (5_000, None)])
def test_an_as_of_read_pages_through_the_archive_and_the_hot_log(
    limit: int, upto: int | None,
) -> None:
    store, archived_rows = archived(20_000)
    kept = {r[0] for r in archived_rows}
    hot = [(p, "hot", 1, "T", b"") for p in range(1, 25_000) if p not in kept]
    log = ArchiveAwareLog(HotLog(hot), Backend(store.records), store)  # type: ignore[arg-type]
    expected = sorted(archived_rows + hot)
    if upto is not None:
        expected = [r for r in expected if r[0] <= upto]
    read: list[Row] = []
    after = 0
    while page := log.read_events(after, limit, upto):
        if not read:
            assert log.read_events(after, limit, upto) == page  # the same read again
        read.extend(page)
        after = page[-1][0]
    assert read == expected
    whole = sorted(archived_rows + hot)
    assert log.read_events(10, 3) == [r for r in whole if r[0] > 10][:3]
    assert log.read_events(0, 5, upto) == expected[:5]  # further back: the segments again
