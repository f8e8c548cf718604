"""The segment file format (ADR 110): built, indexed, verified, one job read from one
frame; a flipped byte or a wrong hash is refused."""

from __future__ import annotations

import pytest

from adapters.archive import segment
from adapters.service.ages import parse_age
from ledger.errors import ConfigurationError


def jobs(count: int, events: int) -> dict[str, list[segment.RawEvent]]:
    made: dict[str, list[segment.RawEvent]] = {}
    position = 0
    for n in range(events):
        for j in range(count):
            position += 1
            made.setdefault(f"job-{j}", []).append(
                (position, f"job-{j}", n + 1, "Topic", b"state-%d" % position)
            )
    return made


def test_a_segment_reads_back_whole_and_one_job_at_a_time() -> None:
    source = jobs(50, 30)
    built = segment.build(3, "ab" * 32, source, frame_events=100)
    index = segment.verify(built.data, built.sha256, deep=True)
    assert (index.seq, index.previous_sha256) == (3, "ab" * 32)
    assert (index.job_count, index.event_count) == (50, 1500)
    assert (index.first_position, index.last_position) == (1, 1500)
    assert len(index.frames) > 1
    every = [e for rows in segment.events(built.data, index) for e in rows]
    assert sorted(every) == sorted(e for rows in source.values() for e in rows)
    offset, length = built.job_frame("job-7")
    frame = segment.read_frame(built.data[offset:offset + length])
    assert [e for e in frame if e[1] == "job-7"] == source["job-7"]


def test_a_damaged_segment_is_refused() -> None:
    built = segment.build(1, "", jobs(5, 5))
    damaged = bytearray(built.data)
    damaged[10] ^= 0xFF
    with pytest.raises(segment.SegmentCorrupt):
        segment.verify(bytes(damaged), built.sha256)
    with pytest.raises(segment.SegmentCorrupt):
        segment.read_index(built.data[:-3])


def test_ages() -> None:
    assert parse_age("X", "1d12h").total_seconds() == 36 * 3600
    for bad in ("", "30", "d", "0d", "3w", "1d 2h", "9999999d", "36501d"):
        with pytest.raises(ConfigurationError):
            parse_age("X", bad)
