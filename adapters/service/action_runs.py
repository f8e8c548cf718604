"""Bulk actions run in the background of the serving process (ADR 100).

``POST /actions`` records the action (``Started``, with its count) and hands its id to
:class:`BackgroundActions`, which runs its batches on a small pool of threads while the
request has already been answered 202; ``GET /actions/{id}`` reads the progress the
batches record. At start-up the API resumes every action the log shows started and not
finished (killed mid-run, or interrupted), so a restart finishes what a crash left.

Two runs of one action never act on a job twice: the ledger refuses a second cancel,
redrive or requeue of a job that moved on, and the action's own events are saved with a
version check, so of two processes running one action the one that saves second stops
(``another process is running it``) without recording anything. In one process an action
is run by one thread at a time.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from adapters.service.actions import ActionRunner
from ledger.action import ActionFinished, ActionNotFound
from ledger.errors import LedgerError

log = logging.getLogger(__name__)

THREADS = 2
"""Actions run at once in one process; more wait their turn (``running``, done 0)."""


class BackgroundActions:
    """Runs actions on threads of their own until finished or :meth:`close`."""

    def __init__(self, runner: ActionRunner, *, threads: int = THREADS) -> None:
        self.runner = runner
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="action")
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._running: dict[UUID, Future[None]] = {}

    def submit(self, action_id: UUID) -> None:
        """Run ``action_id`` in the background unless this process runs it already."""
        with self._lock:
            if self._stop.is_set() or action_id in self._running:
                return
            self._running[action_id] = self._pool.submit(self._run, action_id)

    def is_running(self, action_id: UUID) -> bool:
        with self._lock:
            return action_id in self._running

    def start(self) -> None:
        """Resume the unfinished actions in the background (the log is read on a thread
        of the pool, so a long log does not hold up the start)."""
        self._pool.submit(self._resume)

    def _resume(self) -> None:
        try:
            self.resume_unfinished()
        except Exception:
            log.exception("could not look for unfinished bulk actions; resume them by id")

    def resume_unfinished(self) -> list[UUID]:
        """Submit every action the log shows started and not finished; their ids."""
        found = self.runner.unfinished()
        for action_id in found:
            self.submit(action_id)
        if found:
            log.info("resuming %d unfinished bulk action(s)", len(found))
        return found

    def close(self, timeout: float = 30.0) -> None:
        """Stop after each running action's current batch (it stays resumable) and wait."""
        self._stop.set()
        with self._lock:
            futures = list(self._running.values())
        for future in futures:
            future.cancel()
        done = threading.Event()

        def shut_down() -> None:
            self._pool.shutdown(wait=True)
            done.set()

        threading.Thread(target=shut_down, daemon=True).start()
        if not done.wait(timeout):
            log.warning("bulk actions still running after %.0fs; left resumable", timeout)

    def _run(self, action_id: UUID) -> None:
        try:
            action = self.runner.run(action_id, should_stop=self._stop.is_set)
            log.info("bulk action %s %s: %d of %d done", action_id, action.state.value,
                     action.done, action.total)
        except (ActionFinished, ActionNotFound):
            pass  # finished meanwhile (by another process), or not an action
        except IntegrityError:
            log.info("bulk action %s: another process is running it", action_id)
        except LedgerError as error:  # recorded as Interrupted by the runner
            log.warning("bulk action %s interrupted: %s", action_id, error)
        except Exception:
            log.exception("bulk action %s stopped; it stays resumable", action_id)
        finally:
            with self._lock:
                self._running.pop(action_id, None)
