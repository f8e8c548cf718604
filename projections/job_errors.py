"""The error texts of ``job_status`` as an index (issue 15, ADR 141): the distinct texts,
each under an id (a hash of the text), and each erring job's text id.

Filtering jobs by a piece of error text then scans the distinct texts (few: a handler
fails in a handful of ways) instead of every erring job, and reads the jobs of the
matching texts through ``job_errors``' index on (error id, job id), in id order. Both
tables belong to the ``job_status`` view: they are folded with its rows, in the same
transaction, so the filter never sees a job's status and its error text at different
positions of the log.

A text is kept after no job holds it any longer (the fold never reads to decide whether
it was the last); the scan is over every text ever seen, which a rebuild trims.
"""

from __future__ import annotations

import hashlib

from projections.model import Column, Index, Kind, PageState, Table

JOB_ERRORS = Table(
    name="job_errors",
    kind=Kind.STATE,
    columns=(
        Column("job_id", "uuid", nullable=False),
        Column("error_id", "text", nullable=False),
    ),
    key=("job_id",),
    indexes=(Index("error_idx", ("error_id", "job_id")),),
)

ERROR_TEXTS = Table(
    name="error_texts",
    kind=Kind.STATE,
    columns=(
        Column("error_id", "text", nullable=False),
        Column("error_text", "text", nullable=False),
    ),
    key=("error_id",),
)


def error_id(text: str) -> str:
    """The id of an error text: the first 128 bits of its SHA-256, in hex (32 digits).

    The migration that indexed existing rows computes the same on each database
    (PostgreSQL's ``sha256``; on SQLite this function, registered by the migration)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def index_error(state: PageState, job_id: str, text: str) -> None:
    """The job's error text is now ``text``: its text id, and the text if new."""
    found = error_id(text)
    state.put(JOB_ERRORS, (job_id,), {"job_id": job_id, "error_id": found})
    if state.find(ERROR_TEXTS, (found,)) is None:
        state.put(ERROR_TEXTS, (found,), {"error_id": found, "error_text": text})
