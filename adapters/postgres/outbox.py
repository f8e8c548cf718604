"""The local queue's transactional outbox on PostgreSQL (ADR 151): the events and the queue
rows they ask for in one statement, one transaction.

``{events}_append_outbox`` calls the recorder's quiet append first (so the transaction
takes its id inside the append's ordering section, ADR 150, and not the table lock that a
transaction with an id already must take), then inserts the rows into
``local_queue_messages`` and the positions of the events they were asked for into
``outbox_positions`` (the dispatcher skips those events and forgets the positions as it
passes them). A failed append (a version conflict) writes no row; a committed one wrote
them all.

``{events}_append_outbox_unflushed`` is the same append whose commit does not wait for its
WAL flush (``synchronous_commit = off`` for its transaction): the scheduler's rounds of
releases use it (:func:`unflushed`, ADR 175).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from psycopg import sql

from ledger.outbox import OutboxBatch, outbox_columns

PARAMS = (
    "ids {id_type}[], versions bigint[], topics text[], states bytea[], "
    "queue text, indexes integer[], message_ids uuid[], job_ids uuid[], attempts integer[], "
    "bodies text[], sent_ats double precision[], visible_ats double precision[], "
    "job_queues text[], priorities integer[]"
)
"""The outbox append's arguments: the events' four columns, then the queue rows."""
FUNCTION = sql.SQL(
    "CREATE OR REPLACE FUNCTION {schema}.{function}(" + PARAMS + ") "
    "RETURNS SETOF bigint LANGUAGE plpgsql AS $fn$ "
    "DECLARE positions bigint[]; "
    "BEGIN "
    "positions := ARRAY(SELECT * FROM {schema}.{append}(ids, versions, topics, states)); "
    "INSERT INTO local_queue_messages (queue_name, message_id, job_id, attempt, body, "
    "sent_at, visible_at, job_queue, priority) "
    "SELECT queue, * FROM unnest(message_ids, job_ids, attempts, bodies, sent_ats, "
    "visible_ats, job_queues, priorities); "
    "INSERT INTO outbox_positions (position) "
    "SELECT positions[i + 1] FROM unnest(indexes) AS i; "
    "RETURN QUERY SELECT unnest(positions); "
    "END $fn$"
)
CALL = sql.SQL(
    "SELECT * FROM {schema}.{function}(%b::{id_type}[], %b::bigint[], %b::text[], "
    "%b::bytea[], %b::text, %b::integer[], %b::uuid[], %b::uuid[], %b::integer[], %b::text[], "
    "%b::double precision[], %b::double precision[], %b::text[], %b::integer[]) AS {column}"
)
UNFLUSHED_FUNCTION = sql.SQL(
    "CREATE OR REPLACE FUNCTION {schema}.{function}(" + PARAMS + ") "
    "RETURNS SETOF bigint LANGUAGE plpgsql AS $fn$ "
    "BEGIN "
    "SET LOCAL synchronous_commit = off; "
    "RETURN QUERY SELECT * FROM {schema}.{outbox}(ids, versions, topics, states, queue, "
    "indexes, message_ids, job_ids, attempts, bodies, sent_ats, visible_ats, job_queues, "
    "priorities); "
    "END $fn$"
)
"""The outbox append in a transaction that commits without waiting for the WAL flush
(``SET LOCAL`` lasts to the end of the caller's transaction: the statement's own, on the
recorder's autocommit connection). Why a release may: ADR 175."""

_UNFLUSHED = threading.local()


def function_name(events_table: str) -> str:
    return f"{events_table}_append_outbox"


def unflushed_function_name(events_table: str) -> str:
    return f"{events_table}_append_outbox_unflushed"


@contextmanager
def unflushed_appends() -> Iterator[None]:
    """Outbox appends made by this thread meanwhile commit without waiting for their WAL
    flush (the scheduler's releases, ADR 175); appends without queue rows stay durable."""
    _UNFLUSHED.on = True
    try:
        yield
    finally:
        _UNFLUSHED.on = False


def unflushed() -> bool:
    """Whether this thread's outbox appends are unflushed now (:func:`unflushed_appends`)."""
    return bool(getattr(_UNFLUSHED, "on", False))


def create_statement(
    schema: str, events_table: str, quiet_append: str, id_type: str
) -> sql.Composed:
    return FUNCTION.format(
        schema=sql.Identifier(schema), function=sql.Identifier(function_name(events_table)),
        append=sql.Identifier(quiet_append), id_type=sql.Identifier(id_type),
    )


def create_unflushed_statement(schema: str, events_table: str, id_type: str) -> sql.Composed:
    return UNFLUSHED_FUNCTION.format(
        schema=sql.Identifier(schema),
        function=sql.Identifier(unflushed_function_name(events_table)),
        outbox=sql.Identifier(function_name(events_table)), id_type=sql.Identifier(id_type),
    )


def call_statement(
    schema: str, events_table: str, id_type: str, column: str, *, flushed: bool = True
) -> sql.Composed:
    """The call, its one column named ``column`` (as the quiet append's rows are read);
    ``flushed=False``: the unflushed function's."""
    name = function_name(events_table) if flushed else unflushed_function_name(events_table)
    return CALL.format(
        schema=sql.Identifier(schema), function=sql.Identifier(name),
        id_type=sql.Identifier(id_type), column=sql.Identifier(column),
    )


def call_params(events: tuple[list[Any], ...], batch: OutboxBatch) -> tuple[Any, ...]:
    return (*events, batch.queue, batch.indexes, *outbox_columns(batch))
