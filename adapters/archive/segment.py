"""The segment file: archived jobs' events, zstd frames per block of jobs, and an index.

Layout: ``frame 0 | frame 1 | ... | index frame | index length (8 bytes) | MAGIC``.
A frame is one zstd frame of a block of jobs' events, each
``[position, originator_id, version, topic, state]``, in log-position order, encoded as a
MessagePack list or as PostgreSQL's binary COPY output (``copy_frames``); jobs are
blocked in the order of their first event, so reading one job decompresses one frame
(its offset and length are in the index and in the ``archived_jobs`` table). The index
frame names the segment (seq, the previous segment's SHA-256: the chain), its positions
and counts, and every job's frame. The segment's SHA-256 is of the whole file.
"""

from __future__ import annotations

import hashlib
import heapq
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import msgspec
import zstandard

from adapters.archive import copy_frames
from ledger.errors import LedgerError

MAGIC = b"JLSEG01\n"
FRAME_EVENTS = 1024
"""A frame closes once its block of jobs holds this many events."""
LEVEL = 3

RawEvent = tuple[int, str, int, str, bytes]
"""(position, originator_id, version, topic, state): a row of the log."""


class SegmentCorrupt(LedgerError):
    """A segment's bytes do not decode or do not match its manifest."""

    code = "segment_corrupt"


class Index(msgspec.Struct, array_like=True):
    seq: int
    previous_sha256: str
    first_position: int
    last_position: int
    job_count: int
    event_count: int
    frames: list[tuple[int, int]]
    jobs: dict[str, int]


@dataclass(frozen=True)
class Built:
    """A segment as written: its bytes, SHA-256 and index."""

    data: bytes
    sha256: str
    index: Index

    def job_frame(self, job_id: str) -> tuple[int, int]:
        return self.index.frames[self.index.jobs[job_id]]


_encode = msgspec.msgpack.Encoder().encode
_events = msgspec.msgpack.Decoder(list[tuple[int, str, int, str, bytes]])
_index = msgspec.msgpack.Decoder(Index)


def _blocks(jobs: Mapping[str, Sequence[RawEvent]], size: int) -> Iterator[list[str]]:
    return blocked(((j, e[0][0], len(e)) for j, e in jobs.items()), size)


def blocked(jobs: Iterable[tuple[str, int, int]], size: int) -> Iterator[list[str]]:
    """Jobs ``(id, first position, events)`` in blocks of about ``size`` events, in the
    order of their first event."""
    block: list[str] = []
    count = 0
    for job_id, _, events in sorted(jobs, key=lambda j: j[1]):
        block.append(job_id)
        count += events
        if count >= size:
            yield block
            block, count = [], 0
    if block:
        yield block


@dataclass(frozen=True)
class Block:
    """One frame's content before compression: its jobs, its encoded events (MessagePack,
    or PostgreSQL's binary COPY output: ``copy_frames``), their count and positions."""

    jobs: Sequence[str]
    payload: bytes
    events: int
    first: int
    last: int
    compressed: bool = False
    """``payload`` is already the frame (:func:`compress_frame` of the events)."""


_local = threading.local()


def compress_frame(payload: bytes) -> bytes:
    """One frame: ``payload`` as a zstd frame with its checksum (callable from any
    thread: each thread keeps its own compressor)."""
    compressor = getattr(_local, "compressor", None)
    if compressor is None:
        compressor = _local.compressor = zstandard.ZstdCompressor(
            level=LEVEL, write_checksum=True)
    return bytes(compressor.compress(payload))


def build(
    seq: int, previous_sha256: str, jobs: Mapping[str, Sequence[RawEvent]],
    *, frame_events: int = FRAME_EVENTS,
) -> Built:
    """The segment of ``jobs`` (each job's events, in version order; none empty)."""
    def block(ids: list[str]) -> Block:
        rows = list(heapq.merge(*(jobs[j] for j in ids)))
        return Block(ids, _encode(rows), len(rows), rows[0][0], rows[-1][0])

    return assemble(seq, previous_sha256, (block(b) for b in _blocks(jobs, frame_events)))


def assemble(seq: int, previous_sha256: str, blocks: Iterable[Block]) -> Built:
    """The segment of ``blocks``: each compressed as one frame, then the index."""
    compress = zstandard.ZstdCompressor(level=LEVEL, write_checksum=True).compress
    parts: list[bytes] = []
    frames: list[tuple[int, int]] = []
    where: dict[str, int] = {}
    offset = events = 0
    first, last = None, 0
    for block in blocks:
        frame = block.payload if block.compressed else compress(block.payload)
        for job_id in block.jobs:
            where[job_id] = len(frames)
        frames.append((offset, len(frame)))
        parts.append(frame)
        offset += len(frame)
        events += block.events
        first = block.first if first is None else min(first, block.first)
        last = max(last, block.last)
    index = Index(seq, previous_sha256, first or 0, last, len(where), events, frames, where)
    tail = compress(_encode(index))
    parts += [tail, len(tail).to_bytes(8, "big"), MAGIC]
    data = b"".join(parts)
    return Built(data, hashlib.sha256(data).hexdigest(), index)


def read_frame(frame: bytes, job: str | None = None) -> list[RawEvent]:
    """The events of one frame (only ``job``'s when given)."""
    try:
        raw = zstandard.ZstdDecompressor().decompress(frame)
        if raw.startswith(copy_frames.SIGNATURE):
            return copy_frames.decode(raw, job)
        rows = _events.decode(raw)
        return rows if job is None else [row for row in rows if row[1] == job]
    except (zstandard.ZstdError, msgspec.DecodeError, copy_frames.CopyFrameError) as error:
        raise SegmentCorrupt(f"a frame does not decode: {error}") from None


def read_index(data: bytes) -> Index:
    """The index of a whole segment (its trailer)."""
    if not data.endswith(MAGIC) or len(data) < len(MAGIC) + 8:
        raise SegmentCorrupt("not a segment (no trailer)")
    end = len(data) - len(MAGIC)
    length = int.from_bytes(data[end - 8:end], "big")
    if length > end - 8:
        raise SegmentCorrupt("the index length exceeds the segment")
    try:
        raw = zstandard.ZstdDecompressor().decompress(data[end - 8 - length:end - 8])
        return _index.decode(raw)
    except (zstandard.ZstdError, msgspec.DecodeError) as error:
        raise SegmentCorrupt(f"the index does not decode: {error}") from None


def events(data: bytes, index: Index) -> Iterator[list[RawEvent]]:
    """Each frame's events, frame by frame."""
    for offset, length in index.frames:
        yield read_frame(data[offset:offset + length])


def verify(data: bytes, sha256: str, *, deep: bool = False) -> Index:
    """The segment's index if its bytes hash to ``sha256`` (and, ``deep``, every frame
    decodes to the counts and positions the index states); else :class:`SegmentCorrupt`."""
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise SegmentCorrupt(f"its SHA-256 is {actual[:16]}, the manifest says {sha256[:16]}")
    index = read_index(data)
    if deep:
        count, first, last = 0, None, 0
        for rows in events(data, index):
            count += len(rows)
            if rows:
                first = rows[0][0] if first is None else min(first, rows[0][0])
                last = max(last, rows[-1][0])
        if (count, first or 0, last) != (
            index.event_count, index.first_position, index.last_position
        ):
            raise SegmentCorrupt("its frames do not add up to its index")
    return index


def verify_frames(data: bytes, sha256: str) -> Index:
    """:func:`verify` without decoding the events: the hash, the index, and every frame
    decompresses (zstd's own checksum) to a whole MessagePack list or COPY output."""
    index = verify(data, sha256)
    decompress = zstandard.ZstdDecompressor().decompress
    for offset, length in index.frames:
        try:
            raw = decompress(data[offset:offset + length])
        except zstandard.ZstdError as error:
            raise SegmentCorrupt(f"a frame does not decompress: {error}") from None
        if raw.startswith(copy_frames.SIGNATURE) and not raw.endswith(b"\xff\xff"):
            raise SegmentCorrupt("a frame's COPY output has no trailer")
    return index


def merged(streams: Iterable[Iterable[RawEvent]]) -> Iterator[RawEvent]:
    """Many position-ordered event streams as one, in position order."""
    return heapq.merge(*streams)


def read_trailer(get_range: Callable[[int, int], bytes], size: int) -> Index:
    """The index of a segment of ``size`` bytes, read with two ranged reads."""
    tail = len(MAGIC) + 8
    if size < tail:
        raise SegmentCorrupt("not a segment (shorter than its trailer)")
    end = get_range(size - tail, tail)
    if len(end) != tail or not end.endswith(MAGIC):
        raise SegmentCorrupt("not a segment (no trailer)")
    length = int.from_bytes(end[:8], "big")
    if length > size - tail:
        raise SegmentCorrupt("the index length exceeds the segment")
    return read_index(get_range(size - tail - length, length) + end)
