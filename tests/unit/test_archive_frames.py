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
    """Answers each block's COPY as PostgreSQL would: the block's events as bytes."""

    def __init__(self, name: str, numbers: dict[str, int], fail_on: int | None = None,
                 failed: threading.Event | None = None) -> None:
        self.name, self.numbers = name, numbers
        self.fail_on, self.failed = fail_on, failed
        self.chunks: list[int] = []
        self.threads: set[str] = set()

    @contextmanager
    def cursor(self) -> Iterator[Session]:
        yield self

    @contextmanager
    def copy(self, query: str, params: dict[str, str]) -> Iterator[list[bytes]]:
        number = self.numbers[params["ids"].strip("{}").split(",")[0]]
        if number == self.fail_on:
            assert self.failed is not None
            self.failed.set()
            raise ArchiveRaced("gone")
        if self.failed is not None and number % archive_frames.CHUNK_BLOCKS == 0:
            assert self.failed.wait(timeout=30)  # the other session fails first
        if number % archive_frames.CHUNK_BLOCKS == 0:
            self.chunks.append(number)
        self.threads.add(threading.current_thread().name)
        yield [archive_frames.COPY_EMPTY[:-2], b"events of block %d" % number, b"\xff\xff"]


def blocks(count: int) -> tuple[list[list[UUID]], dict[str, int]]:
    made = [[uuid4(), uuid4()] for _ in range(count)]
    return made, {str(job): n for n, block in enumerate(made) for job in block}


def test_two_sessions_share_the_chunks_and_the_frames_come_back_in_order() -> None:
    made, numbers = blocks(100)
    first, second = Session("a", numbers), Session("b", numbers)
    sessions: list[Any] = [first, second]
    frames = archive_frames.read_frames(sessions, "frames", made, b"<%s>".__mod__)
    empty = archive_frames.COPY_EMPTY
    assert frames == [b"<%s>" % (empty[:-2] + b"events of block %d" % n + empty[-2:])
                      for n in range(100)]
    size = archive_frames.CHUNK_BLOCKS
    assert first.chunks == list(range(0, 100, 2 * size))
    assert second.chunks == list(range(size, 100, 2 * size))
    assert first.threads.isdisjoint(second.threads)  # each on a thread of its own
    assert threading.main_thread().name not in first.threads | second.threads


def test_a_failing_session_stops_the_read() -> None:
    size = archive_frames.CHUNK_BLOCKS
    failed = threading.Event()
    made, numbers = blocks(40 * size)
    first = Session("a", numbers, failed=failed)
    second = Session("b", numbers, fail_on=size, failed=failed)
    sessions: list[Any] = [first, second]
    with pytest.raises(ArchiveRaced):
        archive_frames.read_frames(sessions, "frames", made, bytes)
    assert len(first.chunks) < 20  # stopped before reading all of its 20 chunks
