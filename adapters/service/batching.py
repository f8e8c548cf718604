"""Group commit: many concurrent callers, one transaction per batch.

Callers (HTTP handlers, in-process workers) submit commands from any thread and wait on a
future. One writer thread takes whatever has queued up, up to ``max_batch`` commands, and
executes them with :meth:`JobLedger.execute_batch` in one transaction. While one batch
commits, the next one accumulates, so batches grow as fast as load does and a lone caller
is never delayed.

**Callers coming back** (ADR 213). The callers answered by a batch usually submit again at
once (a worker's next report, a producer's next job), but each needs a moment to wake and
to build its command, and the writer used to start the next batch with whatever had
queued meanwhile: four callers one job at a time settled into batches of two, half of
them always a batch behind. The writer now expects back the callers of its last batch,
with those that were already queued when it ended: it waits for up to that many commands,
at most :data:`RETURN_WAIT_SECONDS`, before it commits. A lone caller is expected alone,
so it is still never delayed; a function to run on the writer (``call``) or the writer's
close ends the wait at once. Callers that do not come back within the wait (a caller that
stopped; HTTP clients, whose next request takes longer than a commit) make the writer
stop waiting for a while: after a wait they did not fill it commits the next 1, 2, 4, ...
up to :data:`MAX_SKIPPED` batches at once, and a wait they fill starts over. The HTTP
server's writer does not wait (``return_wait=0``): its closed loop of 100 heartbeats per
request measured 10% slower with it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
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
RETURN_WAIT_SECONDS = 0.0005
"""How long the writer waits for the callers it expects back (see the module)."""
MAX_SKIPPED = 64
"""After a wait the callers did not fill, the writer commits that many batches (1, 2, 4,
... up to this) without waiting before it waits again."""


@dataclass(frozen=True)
class _Call:
    """A function to run on the writer's thread, between two batches (ADR 155)."""

    function: Callable[[], Any]
    future: Future[Any]


class BatchWriter:
    """Coalesces commands from many threads into batched ledger transactions."""

    def __init__(
        self, ledger: JobLedger, clock: Callable[[], datetime], max_batch: int = 500,
        return_wait: float = RETURN_WAIT_SECONDS,
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
        self._return_wait = return_wait
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
        stopping, expected, skip, back_off = False, 0, 0, 0
        while not stopping:
            batch: list[tuple[AnyCommand, Future[Result]]] = []
            call, stopping = self._take(batch, self._queue.get())
            wanted = min(expected, self._max_batch)
            if call is None and not stopping and len(batch) < wanted and self._return_wait:
                if skip:
                    skip -= 1
                else:
                    call, stopping = self._wait_for(batch, wanted)
                    if len(batch) >= wanted:
                        back_off = 0  # they came back: wait for them again
                    elif call is None and not stopping:  # they did not, in time
                        back_off = min(max(1, 2 * back_off), MAX_SKIPPED)
                        skip = back_off
            if batch:
                self._commit(batch)
            # the callers just answered, and those that queued meanwhile (ADR 213)
            expected = len(batch) + self._queue.qsize()
            if call is not None:
                _run_call(call)

    def _wait_for(
        self, batch: list[tuple[AnyCommand, Future[Result]]], wanted: int
    ) -> tuple[_Call | None, bool]:
        """Take commands into ``batch`` until it has ``wanted``, for at most the return
        wait; as :meth:`_take`, stops at a function to run or the close."""
        deadline = time.monotonic() + self._return_wait
        while len(batch) < wanted:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                item = self._queue.get(timeout=left)
            except queue.Empty:
                break
            call, stopping = self._take(batch, item)
            if call is not None or stopping:
                return call, stopping
        return None, False

    def _take(
        self, batch: list[tuple[AnyCommand, Future[Result]]], item: object
    ) -> tuple[_Call | None, bool]:
        """``item`` and whatever else is queued now into ``batch``, up to ``max_batch``
        commands; stops at a function to run (returned). Whether the close was among
        them (``True``: what was queued with it is still taken)."""
        stopping = False
        while True:
            if item is _STOP:
                stopping = True
            elif isinstance(item, _Call):
                return item, stopping
            else:
                assert isinstance(item, tuple)
                batch.append(item)
                if len(batch) >= self._max_batch:
                    return None, stopping
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return None, stopping

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
