"""The live runner lets events gather after a small page before reading the next (issue
19, ``LINGER_SECONDS``): larger pages, fewer transactions per job. It never waits after a
full page (it is behind) nor instead of waiting for new events (idle). The waits are
recorded, not timed."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from projections.registry import VIEWS
from projections.runner import Runner
from tests.support.projection_env import Backend, Workload, make_backend

ALL = list(VIEWS.values())


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    made = make_backend(request, tmp_path)
    yield made
    made.close()


class Recorded(threading.Event):
    """The runner's stop event, recording the lingers (``wait`` with a timeout)."""

    def __init__(self, waits: list[str]) -> None:
        super().__init__()
        self.waits = waits

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(f"linger {timeout}")
        return self.is_set()


def run_once(backend: Backend, page_size: int, linger: float) -> list[str]:
    """Feed every view until the first idle wait; the waits in order."""
    waits: list[str] = []
    stop = Recorded(waits)
    store = backend.store()

    def idle(timeout: float) -> None:
        waits.append("idle")
        stop.set()

    store.wait_for_events = idle  # type: ignore[method-assign]
    Runner(store, ALL, page_size=page_size).run(stop, poll_interval=0.01, linger=linger)
    return waits


def test_a_small_page_lingers_then_the_runner_waits_for_events(backend: Backend) -> None:
    Workload(backend.ledger()).run(5)
    assert run_once(backend, page_size=1000, linger=0.025) == ["linger 0.025", "idle"]


def test_full_pages_do_not_linger(backend: Backend) -> None:
    Workload(backend.ledger()).run(10)
    head = backend.store().head()
    assert head > 40
    waits = run_once(backend, page_size=10, linger=0.025)
    last = head % 10
    assert waits == (["linger 0.025", "idle"] if 0 < last < 10 // 4 else ["idle"])


def test_without_linger_the_runner_never_lingers(backend: Backend) -> None:
    Workload(backend.ledger()).run(5)
    assert run_once(backend, page_size=1000, linger=0.0) == ["idle"]
