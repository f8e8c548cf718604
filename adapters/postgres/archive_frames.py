"""A segment's frames read by two PostgreSQL sessions at once, in one snapshot (ADR 111).

The server builds each frame's events as binary COPY output (``archive.sql``'s
``frames``); that query is most of an archive's time and runs on one CPU per session.
The archive's session exports its REPEATABLE READ snapshot, a second session imports it
(both read exactly the same rows), and each takes every other chunk of blocks and
compresses its frames itself (zstd releases the GIL), so the two sessions' queries and
the compression overlap. Only compressed frames are kept: a chunk's uncompressed
output is dropped once compressed.
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

from ledger.errors import StoreError
from ledger.ports.archive import ArchiveRaced

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
    """The COPY output of the blocks numbered ``chunk``, one query."""
    ids = [job for number in chunk for job in blocks[number]]
    numbers = [number for number in chunk for _ in blocks[number]]
    with session.cursor() as cur:
        cur.execute(query, {"ids": _array(ids), "blocks": _array(numbers)}, binary=True)
        rows = cur.fetchall()
    if [row[0] for row in rows] != list(chunk):
        raise ArchiveRaced("a block's jobs have no events any more; run it again")
    if any(row[1] for row in rows):
        raise StoreError("an event to archive has no topic or state")
    return [bytes(row[2]) for row in rows]


def _array(values: Sequence[object]) -> str:
    """A PostgreSQL array literal: one text parameter (see ``archive._array``)."""
    return "{" + ",".join(map(str, values)) + "}"
