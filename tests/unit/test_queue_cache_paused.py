"""The outbox's "is this queue paused?" (ADR 211): a queue found not paused is trusted for
UNPAUSED_FRESH of the batches' time, one version lookup per second instead of one per
enqueue; a paused queue, this process's own pause or resume, and a clock that went back
all ask the store again."""

from __future__ import annotations

from datetime import timedelta

from ledger.application import JobLedger
from ledger.commands import PauseQueue
from ledger.queue import Queue
from ledger.queue_cache import UNPAUSED_FRESH, QueueCache
from tests.unit.test_queue_cache import NOW, Store, saved_queue


def test_a_queue_found_not_paused_is_asked_again_only_after_a_second() -> None:
    store = Store(saved_queue())
    cache = QueueCache(store.load, store)
    assert not cache.paused("emails", NOW)
    asked = store.loads + store.lookups
    for ms in (1, 200, 999):
        assert not cache.paused("emails", NOW + timedelta(milliseconds=ms))
    assert store.loads + store.lookups == asked
    assert not cache.paused("emails", NOW + UNPAUSED_FRESH)
    assert store.loads + store.lookups == asked + 1
    assert not cache.paused("emails", NOW - timedelta(seconds=5))  # the clock went back
    assert store.loads + store.lookups == asked + 2


def test_a_pause_seen_in_the_store_is_asked_every_time() -> None:
    queue = saved_queue()
    store = Store(queue)
    cache = QueueCache(store.load, store)
    assert not cache.paused("emails", NOW)
    paused = Queue.open("emails", NOW)
    paused.pause("cli:root", "maintenance", NOW)
    paused.collect_events()
    store.queue, store.version = paused, paused.version
    # within the second the old answer stands (a pause by another process: the claims
    # refuse the row's job until the resume, ADR 151) ...
    assert not cache.paused("emails", NOW + timedelta(milliseconds=500))
    # ... then the pause is seen, and asked again on every enqueue while it lasts
    assert cache.paused("emails", NOW + timedelta(seconds=2))
    asked = store.loads + store.lookups
    assert cache.paused("emails", NOW + timedelta(seconds=2, milliseconds=1))
    assert store.loads + store.lookups > asked


def test_this_processes_own_pause_is_seen_by_its_next_enqueue() -> None:
    ledger = JobLedger({"PERSISTENCE_MODULE": "eventsourcing.popo"})
    assert not ledger.queue_cache.paused("emails", NOW)
    ledger.control_queue(PauseQueue(queue="emails", actor="cli:root", reason="r"), NOW)
    assert ledger.queue_cache.paused("emails", NOW + timedelta(milliseconds=10))
