"""Feeding the views from inside another process (``ledger serve``): the runner on a thread.

``ledger projections run`` is the same runner as a process of its own. Either way only one
runner feeds a view at a time; the others wait and take over if it dies.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from adapters.service.backend import Backend
from projections.registry import select
from projections.runner import PAGE_SIZE, Runner

log = logging.getLogger(__name__)


@dataclass
class ViewFeeder:
    """The projection runner on a daemon thread; ``stop()`` ends it and waits."""

    backend: Backend
    views: list[str] | None = None
    page_size: int = PAGE_SIZE
    poll_interval: float = 0.5
    failures: dict[str, str] = field(default_factory=dict)
    error: BaseException | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> ViewFeeder:
        self._thread = threading.Thread(target=self._run, name="view-feeder", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        store = self.backend.open_views()
        try:
            runner = Runner(store, select(self.views), page_size=self.page_size)
            runner.run(self._stop, poll_interval=self.poll_interval)
            self.failures = runner.failures
        except Exception as error:  # the database went away: say so; a supervisor restarts
            self.error = error
            log.exception("the view feeder stopped")
        finally:
            store.close()
