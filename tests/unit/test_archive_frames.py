"""A segment's frames are read by sessions on threads of their own while the caller
compresses what they read (ADR 111): two sessions take every other chunk of blocks, the
frames come back in block order, and a session's failure stops the other and is
raised."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID, uuid4

import pytest

from adapters.postgres import archive_frames
from ledger.ports.archive import ArchiveRaced


class Session:
    """Answers the frames query as PostgreSQL would: (block, nulls, COPY bytes) rows."""

    def __init__(self, name: str, fail_on: int | None = None,
                 failed: threading.Event | None = None) -> None:
        self.name, self.fail_on, self.failed = name, fail_on, failed
        self.chunks: list[list[int]] = []
        self.threads: set[str] = set()
        self._rows: list[tuple[int, int, bytes]] = []

    @contextmanager
    def cursor(self) -> Iterator[Session]:
        yield self

    def execute(self, query: str, params: dict[str, str], *, binary: bool) -> None:
        assert binary
        numbers = [int(n) for n in params["blocks"].strip("{}").split(",")]
        chunk = sorted(set(numbers))
        if self.fail_on in chunk:
            assert self.failed is not None
            self.failed.set()
            raise ArchiveRaced("gone")
        if self.failed is not None:  # the other session fails before this one's answer
            assert self.failed.wait(timeout=30)
        self.chunks.append(chunk)
        self.threads.add(threading.current_thread().name)
        self._rows = [(n, 0, b"events of block %d" % n) for n in chunk]

    def fetchall(self) -> list[tuple[int, int, bytes]]:
        return self._rows


def blocks(count: int) -> list[list[UUID]]:
    return [[uuid4(), uuid4()] for _ in range(count)]


def test_two_sessions_share_the_chunks_and_the_frames_come_back_in_order() -> None:
    first, second = Session("a"), Session("b")
    sessions: list[Any] = [first, second]
    frames = archive_frames.read_frames(sessions, "frames", blocks(100), b"<%s>".__mod__)
    assert frames == [b"<events of block %d>" % n for n in range(100)]
    size = archive_frames.CHUNK_BLOCKS
    assert [c[0] for c in first.chunks] == list(range(0, 100, 2 * size))
    assert [c[0] for c in second.chunks] == list(range(size, 100, 2 * size))
    assert first.threads.isdisjoint(second.threads)  # each on a thread of its own
    assert threading.main_thread().name not in first.threads | second.threads


def test_a_failing_session_stops_the_read() -> None:
    size = archive_frames.CHUNK_BLOCKS
    failed = threading.Event()
    first, second = Session("a", failed=failed), Session("b", fail_on=size, failed=failed)
    sessions: list[Any] = [first, second]
    with pytest.raises(ArchiveRaced):
        archive_frames.read_frames(sessions, "frames", blocks(40 * size), bytes)
    assert len(first.chunks) < 20  # stopped before reading all of its 20 chunks
