"""The checkpoint of each view an archive stands on (ADR 110, ADR 115).

An archive needs, for every view, a checkpoint whose position is past the events it
moves out of the hot log, so that rebuilds and verifies start from it. Taking one copies
the whole view, and the views keep every job's row (archived jobs included), so a copy
per archive run grows with the whole history: ``ledger serve`` archives every 5 minutes.

A checkpoint taken at or after the cut already holds every job that ended before the
cut (it ended before the checkpoint was taken): the archive stands on the view's newest
checkpoint when it is that recent and of today's declaration, and takes a new one
otherwise (at most one per view per ``--older-than`` period). A job whose last event is
past the checkpoint's position anyway (the view lagged when it was taken) is left hot,
as before, until a later checkpoint holds it.
"""

from __future__ import annotations

from datetime import datetime

from projections.checkpoints import Checkpoint, CheckpointStore, format_version, take
from projections.model import View
from projections.store import ViewStore


def archive_checkpoint(
    views: ViewStore, store: CheckpointStore, view: View, now: datetime, cut: datetime
) -> Checkpoint:
    """The view's newest checkpoint if it was taken at or after ``cut`` (and its
    declaration is today's), else a new one taken at ``now``."""
    newest = next(iter(store.list(view.name)), None)  # newest first
    if (newest is not None and newest.taken_at >= cut
            and newest.format_version == format_version(view)):
        return newest
    return take(views, store, view, now)
