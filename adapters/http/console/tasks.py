"""Rebuilds and verifies started from the console: one thread each, at most one per view,
with the progress the page shows. They run as ``ledger projections rebuild`` and
``verify`` do (:class:`Rebuilds`): from the archive's checkpoint when events were
archived, and a rebuild takes a checkpoint of the view after it (ADR 90, ADR 110)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from adapters.service.view_rebuild import Rebuilds
from projections.model import View
from projections.rebuild import rebuild, verify
from projections.store import ViewStore


@dataclass
class Task:
    view: str
    kind: str
    """``rebuild`` or ``verify``."""
    actor: str
    position: int = 0
    head: int = 0
    state: str = "running"
    """``running``, ``done`` or ``failed``."""
    result: str = ""


class ViewTasks:
    """The console's tasks, by view (the latest of each)."""

    def __init__(self) -> None:
        self.tasks: dict[str, Task] = {}
        self.lock = threading.Lock()

    def start(self, open_store: Callable[[], ViewStore], view: View, kind: str,
              actor: str, rebuilds: Rebuilds | None = None) -> Task:
        """Start ``kind`` of ``view`` on a thread unless one runs for it already
        (without ``rebuilds``: from the hot log alone, and no checkpoint after)."""
        with self.lock:
            running = self.tasks.get(view.name)
            if running is not None and running.state == "running":
                return running
            task = self.tasks[view.name] = Task(view.name, kind, actor)
        threading.Thread(target=_run, args=(open_store, view, task, rebuilds),
                         name=f"console-{kind}-{view.name}", daemon=True).start()
        return task


def _run(open_store: Callable[[], ViewStore], view: View, task: Task,
         rebuilds: Rebuilds | None) -> None:
    stores: list[ViewStore] = []

    def progress(position: int, head: int) -> None:
        task.position, task.head = position, head

    try:
        wanted = 3 if task.kind == "verify" else 2 if rebuilds is None else 1  # (its reader)
        stores.extend(open_store() for _ in range(wanted))
        if task.kind == "rebuild" and rebuilds is not None:
            task.result = f"rebuilt {rebuilds.rebuild(stores[0], view, progress).summary()}"
            task.state = "done"
            return
        if task.kind == "rebuild":
            done = rebuild(stores[0], view, progress=progress, reader=stores[1])
            task.result = (f"rebuilt from {done.events} events; swapped in at position "
                           f"{done.position} (generation {done.generation})")
            task.state = "done"
            return
        start = rebuilds.start() if rebuilds is not None else None
        checked = verify(stores[0], stores[1], view, progress=progress, reader=stores[2],
                         start=start)
        task.result = ("equal to a fresh rebuild" if checked.ok else
                       f"differs from a fresh rebuild: {checked.failure or 'rows differ'}")
        task.state = "done" if checked.ok else "failed"
    except Exception as error:  # shown on the page
        task.state, task.result = "failed", f"{type(error).__name__}: {error}"
    finally:
        for store in stores:
            store.close()
