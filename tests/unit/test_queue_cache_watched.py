"""The queues whose versions a batch of claims reads with its candidates (ADR 202): the
ones the cache loaded last, at most WATCHED_MOST, and a version handed over is used once,
by the batch's first look at the queue, instead of a lookup."""

from __future__ import annotations

from uuid import UUID

from ledger.queue import Queue, queue_id
from ledger.queue_cache import WATCHED_MOST, QueueCache


class Versions:
    """A recorder that only tells versions (none stored: every queue never controlled)."""

    def __init__(self) -> None:
        self.asked: list[list[UUID]] = []

    def select_streams(self, ids: object, snapshots_table: object) -> dict[UUID, list[object]]:
        return {}

    def select_versions(self, ids: list[UUID]) -> dict[UUID, int]:
        self.asked.append(list(ids))
        return {}


def never_controlled(name: str) -> Queue | None:
    return None


def test_the_queues_loaded_last_are_watched_at_most_watched_most() -> None:
    cache = QueueCache(never_controlled, Versions())
    names = [f"q{n}" for n in range(WATCHED_MOST + 8)]
    for name in names:
        assert cache.load(name) is None
    cache.load("q0")  # loaded again: the last
    watched, ids = cache.watched()
    assert watched == [*names[9:], "q0"]
    assert len(watched) == WATCHED_MOST
    assert ids == [queue_id(n) for n in watched]


def test_a_version_read_by_the_caller_replaces_one_lookup() -> None:
    recorder = Versions()
    cache = QueueCache(never_controlled, recorder)
    cache.load("default")  # found never controlled
    recorder.asked.clear()
    with cache.versions_read({queue_id("default"): None}):
        assert cache.load("default") is None  # from the version read: no lookup
        assert recorder.asked == []
        assert cache.load("default") is None  # used once: looked up again
        assert recorder.asked == [[queue_id("default")]]
    assert cache.load("default") is None  # outside: looked up as before
    assert len(recorder.asked) == 2
