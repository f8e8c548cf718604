"""Group commit: many concurrent callers, one transaction per batch.

Callers (HTTP handlers, in-process workers) submit commands from any thread and wait on a
future. One writer thread takes whatever has queued up, up to ``max_batch`` commands, and
executes them with :meth:`JobLedger.execute_batch` in one transaction. No timer is
involved: while one batch commits, the next one accumulates, so batches grow exactly as
fast as load does and a lone caller is never delayed.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from adapters.tracing import observe
from ledger.application import JobLedger, Result
from ledger.commands import AnyCommand

log = logging.getLogger(__name__)

_STOP = object()


@dataclass(frozen=True)
class _Call:
    """A function to run on the writer's thread, between two batches (ADR 155)."""

    function: Callable[[], Any]
    future: Future[Any]


class BatchWriter:
    """Coalesces commands from many threads into batched ledger transactions."""

    def __init__(
        self, ledger: JobLedger, clock: Callable[[], datetime], max_batch: int = 500
    ) -> None:
        self._ledger = ledger
        self._clock = clock
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[tuple[AnyCommand, Future[Result]] | _Call | object] = (
            queue.SimpleQueue()
        )
        self._thread = threading.Thread(target=self._run, name="ledger-batch-writer", daemon=True)
        self._started = False
        self._closed = False
        self._lock = threading.Lock()
        self.batches = 0
        self.commands = 0

    def start(self) -> BatchWriter:
        with self._lock:
            if not self._started:
                self._started = True
                self._thread.start()
        return self

    def submit(self, command: AnyCommand) -> Future[Result]:
        """Queue ``command``; the future resolves to its outcome or named error."""
        if self._closed:
            raise RuntimeError("the batch writer is closed")
        if not self._started:
            self.start()
        future: Future[Result] = Future()
        self._queue.put((command, future))
        return future

    def call(self, function: Callable[[], Any]) -> Future[Any]:
        """Run ``function`` on the writer's thread, after the commands queued before it,
        as its own transaction (claims and reports that settle local queue rows with
        their appends: ``adapters/postgres/claims.py``); the future holds what it
        returned or raised."""
        if self._closed:
            raise RuntimeError("the batch writer is closed")
        if not self._started:
            self.start()
        future: Future[Any] = Future()
        self._queue.put(_Call(function, future))
        return future

    def close(self, timeout: float = 10.0) -> None:
        """Finish what is queued, then stop the writer thread."""
        self._closed = True
        if self._started:
            self._queue.put(_STOP)
            self._thread.join(timeout)

    def __enter__(self) -> BatchWriter:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            item = self._queue.get()
            batch: list[tuple[AnyCommand, Future[Result]]] = []
            call: _Call | None = None
            while True:
                if item is _STOP:
                    stopping = True
                elif isinstance(item, _Call):
                    call = item
                    break
                else:
                    assert isinstance(item, tuple)
                    batch.append(item)
                if len(batch) >= self._max_batch:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._commit(batch)
            if call is not None:
                _run_call(call)

    def _commit(self, batch: list[tuple[AnyCommand, Future[Result]]]) -> None:
        live = [(c, f) for c, f in batch if f.set_running_or_notify_cancel()]
        if not live:
            return
        try:
            results = self._ledger.execute_batch([c for c, _ in live], self._clock())
        except Exception as error:  # the store failed: every caller hears about it
            log.warning("batch of %d commands failed: %s", len(live), error)
            for _, future in live:
                future.set_exception(error)
            return
        self.batches += 1
        self.commands += len(live)
        for (_, future), result in zip(live, results, strict=True):
            future.set_result(result)
        observe([c for c, _ in live], results)  # after the answers: callers never wait on it


def _run_call(call: _Call) -> None:
    if not call.future.set_running_or_notify_cancel():
        return
    try:
        result = call.function()
    except BaseException as error:  # handed to the caller, as a batch's failure is
        call.future.set_exception(error)
    else:
        call.future.set_result(result)
