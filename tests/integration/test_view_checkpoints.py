"""Checkpoints and views as of a position, on SQLite and PostgreSQL (ADR 90): the view as
of P equals the log cut at P folded from nothing, whether it starts from a checkpoint or
not, and a checkpoint that no longer matches its checksum is refused."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from projections.asof import view_as_of
from projections.checkpoints import (
    TAKE_LOCK,
    CheckpointBusy,
    CheckpointStore,
    format_version,
    prune,
    take,
)
from projections.memory import MemoryView
from projections.model import View
from projections.registry import VIEWS, get_view
from projections.runner import Runner
from tests.support.projection_env import (
    Backend,
    Workload,
    normal,
    reference_tables,
)
from tests.support.projection_events import T0

ALL = list(VIEWS.values())


@pytest.fixture
def checkpoints(backend: Backend) -> Iterator[CheckpointStore]:
    from adapters.service.backend import backend_for

    backend.ledger()  # creates the database and migrates it
    store = backend_for(backend.settings).checkpoints()
    yield store
    store.close()


def tables(memory: MemoryView, view: View) -> dict[str, list[tuple[Any, ...]]]:
    return {t.name: [tuple(normal(v) for v in row) for row in memory.table(t.name)]
            for t in view.tables}


def corrupt_a_byte(backend: Backend, checkpoint_id: str) -> None:
    """Flip one byte of the checkpoint's first chunk, behind the store's back."""
    conn: Any = backend.store().conn  # type: ignore[attr-defined]
    mark = "%s" if backend.name == "postgres" else "?"
    select = f"SELECT data FROM view_checkpoint_chunks WHERE checkpoint_id = {mark} AND seq = 0"
    (data,) = conn.execute(select, (checkpoint_id,)).fetchone()
    flipped = bytearray(data)
    flipped[len(flipped) // 2] ^= 0x01
    update = (f"UPDATE view_checkpoint_chunks SET data = {mark} "
              f"WHERE checkpoint_id = {mark} AND seq = 0")
    conn.execute(update, (bytes(flipped), checkpoint_id))


def test_the_view_as_of_any_position_is_the_log_cut_there_folded(
    backend: Backend, checkpoints: CheckpointStore
) -> None:
    """Random histories (a new workload seed per example, checkpoints taken at random
    moments while the runner follows) and random positions: the view as of P, from the
    newest checkpoint at or before P or from nothing, equals the log cut at P folded in
    memory, for every view."""
    container = backend.containers[0]
    store = backend.store()
    runner = Runner(store, ALL, page_size=13)
    assert runner.acquire() == list(VIEWS)

    @settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
    @given(seed=st.integers(0, 10_000), rounds=st.lists(st.integers(1, 4), min_size=1,
                                                        max_size=4))
    def history(seed: int, rounds: list[int]) -> None:
        workload = Workload(container, seed=seed, now=T0 + timedelta(days=seed % 3))
        for steps in rounds:
            workload.run(steps)
            runner.catch_up()
            for view in ALL:
                take(store, checkpoints, view, workload.now)
        head = store.head()

        @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
        @given(position=st.integers(0, head), from_checkpoints=st.booleans(),
               view=st.sampled_from(ALL))
        def as_of(position: int, from_checkpoints: bool, view: View) -> None:
            got = view_as_of(store, checkpoints if from_checkpoints else None, view, position)
            assert got.refused == []
            if from_checkpoints:
                assert got.checkpoint is not None or position < min(
                    c.position for c in checkpoints.list(view.name)
                )
            assert tables(got.memory, view) == reference_tables(store, view, position)

        as_of()

    history()


def test_a_checkpoint_that_does_not_match_its_checksum_is_refused_and_the_read_falls_back(
    backend: Backend, checkpoints: CheckpointStore
) -> None:
    container = backend.containers[0]
    store = backend.store()
    runner = Runner(store, ALL)
    runner.acquire()
    workload = Workload(container)
    view = get_view("job_status")
    taken = []
    for _ in range(2):
        workload.run(6)
        runner.catch_up()
        taken.append(take(store, checkpoints, view, workload.now))
    older, newer = taken
    head = store.head()
    corrupt_a_byte(backend, newer.id)

    got = view_as_of(store, checkpoints, view, head)
    assert [e.checkpoint.id for e in got.refused] == [newer.id]
    assert "refused" in str(got.refused[0])
    assert got.checkpoint == older
    assert got.folded > 0
    assert tables(got.memory, view) == reference_tables(store, view, head)

    corrupt_a_byte(backend, older.id)
    got = view_as_of(store, checkpoints, view, head)
    assert [e.checkpoint.id for e in got.refused] == [newer.id, older.id]
    assert got.checkpoint is None
    assert tables(got.memory, view) == reference_tables(store, view, head)


def test_a_checkpoint_of_another_declaration_or_row_count_is_refused(
    backend: Backend, checkpoints: CheckpointStore
) -> None:
    container = backend.containers[0]
    store = backend.store()
    runner = Runner(store, ALL)
    runner.acquire()
    Workload(container).run(5)
    runner.catch_up()
    view = get_view("job_status")
    good = take(store, checkpoints, view, T0)
    bad = [replace(good, id="declaration", format_version="0" * 16),
           replace(good, id="rows", row_count=good.row_count + 1)]
    for copy in bad:
        for seq, data in enumerate(list(checkpoints.chunks(good.id))):
            checkpoints.write_chunk(copy.id, seq, data)
        checkpoints.publish(copy)
    checkpoints.delete(good.id)

    got = view_as_of(store, checkpoints, view, store.head())
    assert sorted(e.reason for e in got.refused) == [
        f"{good.row_count} rows, {good.row_count + 1} recorded",
        "the view's declaration changed since",
    ]
    assert got.checkpoint is None
    assert format_version(view) != "0" * 16
    assert tables(got.memory, view) == reference_tables(store, view, store.head())


def test_checkpoints_are_pruned_to_the_newest_and_one_take_runs_at_a_time(
    backend: Backend, checkpoints: CheckpointStore
) -> None:
    container = backend.containers[0]
    store = backend.store()
    runner = Runner(store, ALL)
    runner.acquire()
    view = get_view("queue_history")
    workload = Workload(container)
    for _ in range(4):
        workload.run(2)
        runner.catch_up()
        take(store, checkpoints, view, workload.now)
    positions = [c.position for c in checkpoints.list(view.name)]
    assert positions == sorted(positions, reverse=True)
    assert len(positions) == 4
    assert len(prune(checkpoints, view.name, 2)) == 2
    assert [c.position for c in checkpoints.list(view.name)] == positions[:2]
    assert prune(checkpoints, view.name, 0)
    assert len(checkpoints.list(view.name)) == 1

    checkpoints.write_chunk("never-published", 0, b"orphan")
    other = backend.store()
    assert other.try_lock(TAKE_LOCK)
    with pytest.raises(CheckpointBusy):
        take(store, checkpoints, view, T0)
    other.unlock(TAKE_LOCK)
    take(store, checkpoints, view, T0)
    assert list(checkpoints.chunks("never-published")) == []
