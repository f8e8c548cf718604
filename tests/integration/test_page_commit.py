"""A page goes into every view at its position in ONE transaction (issue 19,
projections/page_commit.py): nine views cost one BEGIN/COMMIT per page instead of nine,
with the rows each view folds and its position compared-and-set in it as before. A view
that fails on an event of the page still stops there alone (the view-by-view path)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from projections.registry import VIEWS
from projections.runner import Runner
from projections.store import Tracking, ViewStore
from tests.support.projection_env import (
    Backend,
    Workload,
    reference_tables,
    store_tables,
)

ALL = list(VIEWS.values())


def counting(store: ViewStore) -> list[int]:
    """Count the store's transactions (wraps its ``transaction`` on this instance)."""
    count = [0]
    opened = store.transaction

    @contextmanager
    def transaction() -> Iterator[None]:
        count[0] += 1
        with opened():
            yield

    store.transaction = transaction  # type: ignore[method-assign]
    return count


def test_one_transaction_per_page_for_every_view(backend: Backend) -> None:
    workload = Workload(backend.ledger())
    workload.run(30)
    store = backend.store()
    runner = Runner(store, ALL, page_size=50)
    assert runner.acquire() == list(VIEWS)
    transactions = counting(store)
    pages = 0
    while runner.step():
        pages += 1
    head = store.head()
    assert pages == -(-head // 50)
    assert transactions[0] == pages  # one per page, not len(VIEWS) per page
    for view in ALL:
        assert store.tracking(view.name).position == head
        assert store_tables(store, view) == reference_tables(store, view, head), view.name


def test_a_view_behind_the_others_is_fed_on_its_own(backend: Backend) -> None:
    workload = Workload(backend.ledger())
    workload.run(10)
    store = backend.store()
    first = Runner(store, ALL[:1], page_size=1000)
    assert first.acquire() == [ALL[0].name]
    first.catch_up()
    first.release()
    workload.run(10)
    runner = Runner(store, ALL, page_size=1000)
    runner.acquire()
    runner.catch_up()
    head = store.head()
    for view in ALL:
        assert store.tracking(view.name).position == head
        assert store_tables(store, view) == reference_tables(store, view, head), view.name


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_on_postgresql_the_positions_move_in_one_statement(backend: Backend) -> None:
    workload = Workload(backend.ledger())
    workload.run(10)
    store = backend.store()
    runner = Runner(store, ALL, page_size=1000)
    runner.acquire()
    runner.catch_up()  # the tracking rows exist: no first-page insert
    workload.run(10)
    single: list[str] = []
    advance = store.advance

    def counted(expected: Tracking, position: int, owner: str) -> bool:
        single.append(expected.view)
        return advance(expected, position, owner)

    store.advance = counted  # type: ignore[method-assign]
    transactions = counting(store)
    assert runner.step() > 0
    assert (transactions[0], single) == (1, [])  # nine positions, one UPDATE
    head = store.head()
    for view in ALL:
        assert store.tracking(view.name).position == head


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_a_position_moved_under_the_runner_sends_the_page_view_by_view(
    backend: Backend,
) -> None:
    workload = Workload(backend.ledger())
    workload.run(10)
    store = backend.store()
    runner = Runner(store, ALL, page_size=1000)
    runner.acquire()
    runner.catch_up()
    workload.run(10)
    swapped = ALL[-1].name  # as a rebuild's swap does: same rows, a new generation
    store.set_tracking(swapped, store.tracking(swapped).position, 7)
    transactions = counting(store)
    runner.catch_up()
    assert transactions[0] > 1  # the page's one transaction rolled back, then view by view
    head = store.head()
    for view in ALL:
        assert store.tracking(view.name).position == head
        assert store_tables(store, view) == reference_tables(store, view, head), view.name
    assert store.tracking(swapped).generation == 7
