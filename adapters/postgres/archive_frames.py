"""A segment's frames read from PostgreSQL while the archive compresses (ADR 111).

A frame is a block of jobs' events as PostgreSQL's binary COPY output (``archive.sql``'s
``frames``: one ``COPY ... TO STDOUT (FORMAT binary)`` per block); reading them is most
of an archive's server time. A session reads the blocks a chunk at a time on a thread
of its own while the caller's thread compresses the chunks already read (zstd and
psycopg release the GIL), so the server's work and the compression overlap; only
compressed frames are kept. With ``SESSIONS`` > 1 more sessions, each in the snapshot
the archive's session exported, take turns by chunk (off: measured slower here).
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql

from ledger.ports.archive import ArchiveRaced

COPY_EMPTY = b"PGCOPY\n\xff\r\n\x00" + bytes(8) + b"\xff\xff"
"""A binary COPY's output without a row."""
CHUNK_BLOCKS = 16
"""Blocks (frames) per query: about 16,000 events."""

SESSIONS = 1
"""Sessions reading frames at once (the archive's own, then helpers in its snapshot).
Two cost 40% more server CPU and no wall time on the measured 2-vCPU machine (ADR 111)."""

Compress = Callable[[bytes], bytes]
Connection = psycopg.Connection[Any]


def import_snapshot(helper: Connection, snapshot_id: str, isolation: str) -> None:
    """Start ``helper``'s transaction in the snapshot ``snapshot_id`` exported by the
    archive's session (``isolation`` is the statement that sets REPEATABLE READ)."""
    helper.execute(isolation)
    helper.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot_id)))


def read_frames(
    sessions: Sequence[Connection], query: str, blocks: Sequence[Sequence[UUID]],
    compress: Compress,
) -> list[bytes]:
    """Each block's frame (its events as COPY output, compressed), in block order: each
    session (all in the same snapshot) reads its share of the chunks of blocks on a
    thread of its own while this thread compresses the chunks already read."""
    frames: list[bytes] = [b""] * len(blocks)
    chunks = [range(start, min(start + CHUNK_BLOCKS, len(blocks)))
              for start in range(0, len(blocks), CHUNK_BLOCKS)]
    reader = _Reader(query, blocks, queue.Queue(maxsize=2 * len(sessions)))
    ready, stop = reader.ready, reader.stop
    threads = [threading.Thread(target=reader.fetch, name=f"archive-frames-{n}",
                                args=(session, chunks[n::len(sessions)]))
               for n, session in enumerate(sessions)]
    for thread in threads:
        thread.start()
    try:
        finished = 0
        while finished < len(threads):
            read = ready.get()
            if read is None:
                finished += 1
            elif isinstance(read, BaseException):
                raise read
            else:
                for number, payload in zip(*read, strict=True):
                    frames[number] = compress(payload)
    finally:
        stop.set()
        while any(thread.is_alive() for thread in threads):  # unblock a full queue
            with contextlib.suppress(queue.Empty):
                ready.get(timeout=0.05)
    return frames


_Read = tuple[range, list[bytes]] | BaseException | None
"""A chunk's numbers and COPY outputs, a session's error, or a session's end."""


@dataclass
class _Reader:
    """What the sessions' threads share: the query, the blocks, the queue of chunks read
    and the signal to stop."""

    query: str
    blocks: Sequence[Sequence[UUID]]
    ready: queue.Queue[_Read]
    stop: threading.Event = field(default_factory=threading.Event)

    def fetch(self, session: Connection, mine: list[range]) -> None:
        try:
            for chunk in mine:
                if self.stop.is_set():
                    return
                self.ready.put((chunk, _chunk(session, self.query, self.blocks, chunk)))
        except BaseException as error:  # raised in the compressing thread
            self.ready.put(error)
        finally:
            self.ready.put(None)


def _chunk(
    session: Connection, query: str, blocks: Sequence[Sequence[UUID]], chunk: range,
) -> list[bytes]:
    """The COPY output of the blocks numbered ``chunk``: one ``COPY ... TO STDOUT (FORMAT
    binary)`` per block, whose output is the frame's bytes as they are."""
    payloads = []
    with session.cursor() as cur:
        for number in chunk:
            with cur.copy(query, {"ids": _array(blocks[number])}) as copy:
                payloads.append(b"".join(bytes(data) for data in copy))
    if any(len(p) <= len(COPY_EMPTY) for p in payloads):
        raise ArchiveRaced("a block's jobs have no events any more; run it again")
    return payloads


def _array(values: Sequence[object]) -> str:
    """A PostgreSQL array literal: one text parameter (see ``archive._array``)."""
    return "{" + ",".join(map(str, values)) + "}"
