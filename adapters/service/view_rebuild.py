"""A rebuild of a view as an operator starts it, from the CLI (``ledger projections
rebuild``) or the console's Views page: the same start and the same checkpoint after.

It starts from the newest checkpoint at or after the archive's horizon when events were
archived (ADR 110; ``--from-archive`` replays the segments and the hot log instead), and
takes a checkpoint of the rebuilt view and prunes the older ones (ADR 90), so time travel
after a rebuild does not fold the whole log again.
"""

from __future__ import annotations

from dataclasses import dataclass

from adapters.service.archive_replay import archive_options, archive_start
from adapters.service.backend import Backend
from adapters.service.bootstrap import utc_now
from projections.checkpoints import Checkpoint, CheckpointBusy, prune, take
from projections.model import View
from projections.rebuild import REBUILD_PAGE, Progress, RebuildResult, Start, rebuild
from projections.store import ViewStore


@dataclass(frozen=True)
class Rebuilt:
    result: RebuildResult
    checkpoint: Checkpoint | None
    """``None`` when another take was running (the serve's checkpointer takes the next)."""

    def summary(self) -> str:
        """What the CLI and the console say after ``rebuilt`` (and the view's name)."""
        done = self.result
        taken = (f"checkpoint at {self.checkpoint.position}" if self.checkpoint else
                 "no checkpoint: another was being taken")
        return (f"from {done.events} events; swapped in at position {done.position} "
                f"(generation {done.generation}); {taken}")


def take_and_prune(backend: Backend, store: ViewStore, view: View, keep: int) -> Checkpoint:
    """A checkpoint of the live view now; the view's checkpoints beyond ``keep`` deleted."""
    checkpoints = backend.checkpoints()
    try:
        made = take(store, checkpoints, view, utc_now())
        prune(checkpoints, view.name, keep)
        return made
    finally:
        checkpoints.close()


def rebuild_view(
    backend: Backend, store: ViewStore, view: View, *, keep: int,
    page_size: int = REBUILD_PAGE, progress: Progress | None = None,
    from_archive: bool = False,
) -> Rebuilt:
    """Rebuild ``view`` into ``store`` (a second session reads ahead), then checkpoint it."""
    reader = backend.open_views()  # reads the next pages while this one is folded
    start, log = archive_options(backend, from_archive)
    try:
        result = rebuild(store, view, page_size=page_size, progress=progress, reader=reader,
                         start=start, log=log)
    finally:
        reader.close()
    try:
        return Rebuilt(result, take_and_prune(backend, store, view, keep))
    except CheckpointBusy:
        return Rebuilt(result, None)


@dataclass(frozen=True)
class Rebuilds:
    """Rebuilds and verifies as the CLI runs them, for a long-running process (the
    console's Views page): from the archive's checkpoint, with a checkpoint after."""

    backend: Backend
    keep: int
    """Checkpoints kept per view (``CHECKPOINT_KEEP``)."""

    def rebuild(self, store: ViewStore, view: View, progress: Progress) -> Rebuilt:
        return rebuild_view(self.backend, store, view, keep=self.keep, progress=progress)

    def start(self) -> Start | None:
        """Where a verify starts (``None`` while nothing is archived)."""
        return archive_start(self.backend)
