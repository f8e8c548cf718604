"""The queue cache: a queue saved by this process is reused while the store's version
agrees, as a private copy (the first copy after a save unchecked, until a decision that
appends nothing asks ``confirm``); a queue another process wrote to is loaded afresh."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import UUID, uuid4

from ledger.queue import Queue
from ledger.queue_cache import QueueCache

NOW = datetime(2026, 12, 4, tzinfo=UTC)


class Store:
    def __init__(self, queue: Queue) -> None:
        self.queue = queue
        self.version = queue.version
        self.loads = 0
        self.lookups = 0

    def load(self, name: str) -> Queue | None:
        self.loads += 1
        return self.queue if name == self.queue.name else None

    def select_versions(self, ids: Sequence[UUID]) -> dict[UUID, int]:
        self.lookups += 1
        return {i: self.version for i in ids if i == self.queue.id}

    def select_streams(self, ids: Sequence[UUID], table: str | None) -> dict[UUID, list[object]]:
        return {}


def saved_queue() -> Queue:
    queue = Queue.open("emails", NOW)
    queue.set_limit(5, "cli:root", None, NOW)
    queue.collect_events()
    return queue


def test_a_queue_this_process_saved_is_not_loaded_again_while_the_store_agrees() -> None:
    store = Store(saved_queue())
    cache = QueueCache(store.load, store)
    first = cache.load("emails")
    assert first is not None
    assert store.loads == 1
    first.take_slot(uuid4(), 1, NOW)
    first.collect_events()
    store.version = first.version
    cache.remember([first])
    again = cache.load("emails")
    assert store.loads == 1
    assert again is not None
    assert again is not first
    assert again.running == first.running
    again.take_slot(uuid4(), 1, NOW)  # deciding on the copy leaves the held queue alone
    assert len(first.running) == 1
    assert not first.pending_events


def test_a_queue_another_process_wrote_to_is_loaded_afresh() -> None:
    store = Store(saved_queue())
    cache = QueueCache(store.load, store)
    cache.remember([store.queue])
    cache.load("emails")  # lent unchecked, appended nothing
    store.version += 1  # another process took a slot
    assert cache.load("emails") is store.queue  # lent again: checked, stale, loaded
    assert store.loads == 1


def test_the_first_copy_after_a_save_is_lent_without_a_lookup_and_confirmed_on_demand(
) -> None:
    store = Store(saved_queue())
    cache = QueueCache(store.load, store)
    cache.remember([store.queue])
    lent = cache.load("emails")
    assert lent is not None
    assert lent is not store.queue
    assert (store.loads, store.lookups) == (0, 0)
    assert cache.confirm("emails")  # the store agrees: one lookup
    assert cache.confirm("emails")  # confirmed already: none
    assert store.lookups == 1


def test_a_stale_unchecked_copy_is_not_confirmed_and_the_queue_is_loaded_afresh() -> None:
    store = Store(saved_queue())
    cache = QueueCache(store.load, store)
    cache.remember([store.queue])
    assert cache.load("emails") is not store.queue
    store.version += 1  # another process paused the queue, or took a slot
    assert not cache.confirm("emails")
    assert cache.load("emails") is store.queue
    assert store.loads == 1


def test_without_version_lookups_every_load_reads_the_store() -> None:
    store = Store(saved_queue())
    cache = QueueCache(store.load, object())
    cache.remember([store.queue])
    cache.load("emails")
    cache.load("emails")
    assert store.loads == 2


def test_a_queue_found_stale_is_checked_on_every_lend_until_found_current() -> None:
    store = Store(saved_queue())
    cache = QueueCache(store.load, store)
    cache.remember([store.queue])
    cache.load("emails")
    store.version += 1  # another process writes to the queue too
    assert not cache.confirm("emails")
    store.version = store.queue.version  # this process saved it again: the store agrees
    cache.remember([store.queue])
    lookups = store.lookups
    cache.load("emails")  # contended: checked although just saved
    assert store.lookups == lookups + 1
    cache.remember([store.queue])
    cache.load("emails")  # found current last time: lent unchecked again
    assert store.lookups == lookups + 1


def test_a_queue_never_controlled_is_checked_by_its_version_not_loaded() -> None:
    store = Store(saved_queue())
    cache = QueueCache(store.load, store)
    assert cache.load("default") is None
    assert (store.loads, store.lookups) == (1, 0)
    for _ in range(3):  # each batch: one version lookup instead of a load's two reads
        assert cache.load("default") is None
    assert (store.loads, store.lookups) == (1, 3)


def test_a_queue_controlled_since_it_was_found_absent_is_loaded() -> None:
    store = Store(saved_queue())
    cache = QueueCache(store.load, store)
    assert cache.load("emails-2") is None
    store.queue = Queue.open("emails-2", NOW)  # another process controls it now
    store.queue.collect_events()
    store.version = store.queue.version
    loaded = cache.load("emails-2")
    assert loaded is not None
    assert loaded.name == "emails-2"
    assert (store.loads, store.lookups) == (2, 1)
