"""A page of every view waits for PostgreSQL three times to commit, and composes and
chooses dumpers for none of its statements again (issue 19, ADR 200;
adapters/postgres/page_writes.py).

The page's one transaction (ADR 190) sent ``BEGIN``, the positions' compare-and-set, one
statement per view table with rows and the queue history's ``COPY`` (two exchanges),
then ``COMMIT``, each waited for; every statement made a new cursor that rendered it to
bytes and chose its array dumpers again. Now ``BEGIN``, the compare-and-set and the rows
pipelined (one wait; the compare-and-set's row count decides the commit), ``COMMIT``. Counted at
psycopg's ``Connection.wait`` on the store's connection, not timed."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.types.array import ListBinaryDumper, ListDumper

from adapters.postgres import page_writes
from projections import page_commit
from projections.registry import VIEWS
from projections.runner import Runner
from projections.store import ViewStore
from tests.support.projection_env import Backend, Workload, reference_tables, store_tables

ALL = list(VIEWS.values())
pytestmark = [pytest.mark.postgres, pytest.mark.parametrize("backend", ["postgres"],
                                                            indirect=True)]  # fmt: skip


class Exchanges:
    """Waits for the server while a page commits on ``conn``: each statement run outside
    a pipeline, and each pipeline's sync (what a pipelined statement waits for)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, conn: Any) -> None:
        self.seen: list[str] = []
        wait = psycopg.Connection.wait

        def counted(self_: psycopg.Connection[Any], gen: Any, *args: Any, **kwargs: Any) -> Any:
            name = getattr(gen, "__qualname__", "?").split(".")[-1]
            piped = self_._pipeline is not None
            synced = name in {"_sync_gen", "_exit_gen"}
            if committing[0] and self_ is conn and (not piped or synced):
                self.seen.append(name)
            return wait(self_, gen, *args, **kwargs)

        monkeypatch.setattr(psycopg.Connection, "wait", counted)

    def take(self) -> list[str]:
        seen, self.seen = self.seen, []
        return seen


def calls(monkeypatch: pytest.MonkeyPatch, cls: Any, name: str) -> list[int]:
    """Calls of ``cls.name`` while a page commits."""
    count = [0]
    original = getattr(cls, name)

    def counted(self: Any, *args: Any) -> Any:
        count[0] += committing[0]
        return original(self, *args)

    monkeypatch.setattr(cls, name, counted)
    return count


committing = [0]


@pytest.fixture(autouse=True)
def _committing(monkeypatch: pytest.MonkeyPatch) -> None:
    """``committing[0]`` is 1 while ``page_commit._commit`` runs."""
    commit = page_commit._commit

    def flagged(*args: Any) -> None:
        committing[0] = 1
        try:
            commit(*args)
        finally:
            committing[0] = 0

    monkeypatch.setattr(page_commit, "_commit", flagged)


def caught_up(backend: Backend, workload: Workload) -> tuple[ViewStore, Runner]:
    workload.run(10)
    store = backend.store()
    runner = Runner(store, ALL, page_size=1000)
    runner.acquire()
    runner.catch_up()  # the tracking rows exist, every view at the head
    return store, runner


def test_a_page_waits_for_the_server_three_times_to_commit(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    workload = Workload(backend.ledger())
    store, runner = caught_up(backend, workload)
    exchanges = Exchanges(monkeypatch, store.conn)  # type: ignore[attr-defined]
    with monkeypatch.context() as unpiped:
        unpiped.setattr(page_writes, "supported", lambda: False)
        workload.run(3)
        assert runner.step() > 0
    before = exchanges.take()
    workload.run(3)  # fewer queue history rows than COPY_FROM
    assert runner.step() > 0
    after = exchanges.take()
    assert len(before) >= 10  # BEGIN, positions, a statement per table with rows, COMMIT
    assert after == ["_enter_gen", "_exit_gen", "_exit_gen"]  # BEGIN, the pipeline, COMMIT
    workload.run(10)  # more: they go by COPY after the pipeline
    assert runner.step() > page_writes.COPY_FROM
    assert exchanges.take() == ["_enter_gen", "_exit_gen", "_start_copy_gen", "copy_to",
                                "copy_end", "_exit_gen"]  # fmt: skip
    head = store.head()
    for view in ALL:
        assert store.tracking(view.name).position == head
        assert store_tables(store, view) == reference_tables(store, view, head), view.name


def test_a_page_renders_no_statement_and_chooses_no_dumper_again(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    workload = Workload(backend.ledger())
    store, runner = caught_up(backend, workload)
    for _ in range(3):  # every statement's first use
        workload.run(10)
        runner.step()
    renderings = calls(monkeypatch, sql.Composed, "as_bytes")
    upgrades = [calls(monkeypatch, cls, "upgrade") for cls in (ListDumper, ListBinaryDumper)]
    for _ in range(5):
        workload.run(10)
        assert runner.step() > 0
    assert renderings[0] == 0
    assert [u[0] for u in upgrades] == [0, 0]
    head = store.head()
    for view in ALL:
        assert store_tables(store, view) == reference_tables(store, view, head), view.name
