"""Frames in PostgreSQL's binary COPY encoding (ADR 110, as-built notes): they decode to
the same events as MessagePack frames, a segment may hold them, and damaged ones are
refused."""

from __future__ import annotations

import pytest

from adapters.archive import copy_frames, segment

ROWS: list[segment.RawEvent] = [
    (3, "0b7c1a2e-0000-4000-8000-000000000001", 1, "ledger.job:Job.Enqueued", b"{\"a\":1}"),
    (9, "0b7c1a2e-0000-4000-8000-000000000002", 1, "t\u00e9", b""),
    (12, "0b7c1a2e-0000-4000-8000-000000000001", 2, "ledger.job:Job.Completed", b"\x00\xff"),
]


def test_a_copy_frame_decodes_to_its_rows() -> None:
    assert copy_frames.decode(copy_frames.encode(ROWS)) == ROWS


def test_a_segment_of_copy_frames_reads_back_one_job_at_a_time() -> None:
    block = segment.Block([r[1] for r in ROWS[:2]], copy_frames.encode(ROWS), 3, 3, 12)
    built = segment.assemble(1, "", [block])
    index = segment.verify_frames(built.data, built.sha256)
    assert segment.verify(built.data, built.sha256, deep=True) == index
    offset, length = built.job_frame(ROWS[1][1])
    assert segment.read_frame(built.data[offset:offset + length]) == ROWS


@pytest.mark.parametrize("cut", [5, 25, -3, -1])
def test_a_truncated_copy_frame_is_refused(cut: int) -> None:
    data = copy_frames.encode(ROWS)
    with pytest.raises(copy_frames.CopyFrameError):
        copy_frames.decode(data[:cut])
    built = segment.assemble(1, "", [segment.Block(["j"], data[:cut], 3, 3, 12)])
    with pytest.raises(segment.SegmentCorrupt):
        segment.read_frame(built.data[built.index.frames[0][0]:][:built.index.frames[0][1]])


def test_one_jobs_rows_are_read_without_decoding_the_others() -> None:
    job = ROWS[0][1]
    assert copy_frames.decode(copy_frames.encode(ROWS), job) == [ROWS[0], ROWS[2]]
    built = segment.build(1, "", {job: [ROWS[0], ROWS[2]], ROWS[1][1]: [ROWS[1]]})
    offset, length = built.job_frame(job)
    assert segment.read_frame(built.data[offset:offset + length], job) == [ROWS[0], ROWS[2]]
