"""New jobs appended with their queue rows in the fewest parameters (issue 19, ADR 212).

A batch of new jobs (``ledger/new_jobs.py``) is the most common append, and its columns are
mostly constant: every event is version 1 of its job with the ``Enqueued`` topic, every
queue row is attempt 0 of the job its event names, sent and visible at the batch's time,
its message id any fresh one. The general outbox append (``outbox.py``) takes all of them
as fourteen arrays; psycopg dumps each array in Python (about 3 µs of client CPU each),
and the server unpacks each. These two functions take only what varies:

- ``{events}_append_new_job``: one job, scalars only. ``outbox_queue`` NULL writes the
  event alone (no local queue: SQS, or a job that waits for the scheduler).
- ``{events}_append_new_jobs``: a batch; the events' ids and states, and for the jobs at
  ``indexes`` (0-based) their message's body, queue and priority.

The message ids are the server's (``gen_random_uuid()``); the positions of the jobs given a
row go to ``outbox_positions`` as the general outbox append writes them. Both start with
the same ordering section as every append (``log_order.SECTION``, ADR 150), and, like the
general append, fail whole on a version conflict.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import sql

from adapters.postgres.log_order import section
from ledger.new_jobs import NewJobMessages

ONE = sql.SQL(
    "CREATE OR REPLACE FUNCTION {schema}.{function}(new_id {id_type}, new_topic text, "
    "new_state bytea, outbox_queue text, new_body text, new_sent_at double precision, "
    "new_job_queue text, new_priority integer) "
    "RETURNS bigint LANGUAGE plpgsql AS $fn$ "
    "DECLARE position bigint; txid xid8; "
    "BEGIN "
    "{section}"
    "INSERT INTO {schema}.{table} "
    "(originator_id, originator_version, topic, state, notification_id, transaction_id) "
    "VALUES (new_id, 1, new_topic, new_state, position, txid); "
    "IF outbox_queue IS NOT NULL THEN "
    "INSERT INTO local_queue_messages (queue_name, message_id, job_id, attempt, body, "
    "sent_at, visible_at, job_queue, priority) VALUES (outbox_queue, gen_random_uuid(), "
    "new_id::uuid, 0, new_body, new_sent_at, new_sent_at, new_job_queue, new_priority); "
    "INSERT INTO outbox_positions (position) VALUES (position); "
    "END IF; "
    "RETURN position; "
    "END $fn$"
)
MANY = sql.SQL(
    "CREATE OR REPLACE FUNCTION {schema}.{function}(ids {id_type}[], new_topic text, "
    "states bytea[], outbox_queue text, indexes integer[], bodies text[], "
    "new_sent_at double precision, job_queues text[], priorities integer[]) "
    "RETURNS void LANGUAGE plpgsql AS $fn$ "
    "DECLARE positions bigint[]; txid xid8; "
    "BEGIN "
    "{section}"
    "INSERT INTO {schema}.{table} "
    "(originator_id, originator_version, topic, state, notification_id, transaction_id) "
    "SELECT u.id, 1, new_topic, u.state, u.position, txid "
    "FROM unnest(ids, states, positions) AS u(id, state, position); "
    "IF outbox_queue IS NOT NULL THEN "
    "INSERT INTO local_queue_messages (queue_name, message_id, job_id, attempt, body, "
    "sent_at, visible_at, job_queue, priority) "
    "SELECT outbox_queue, gen_random_uuid(), ids[m.i + 1]::uuid, 0, m.body, new_sent_at, "
    "new_sent_at, m.job_queue, m.priority "
    "FROM unnest(indexes, bodies, job_queues, priorities) AS m(i, body, job_queue, priority); "
    "INSERT INTO outbox_positions (position) SELECT positions[i + 1] FROM unnest(indexes) AS i; "
    "END IF; "
    "END $fn$"
)
CALL_ONE = sql.SQL(
    "SELECT {schema}.{function}(%b::{id_type}, %b::text, %b::bytea, %b::text, %b::text, "
    "%b::double precision, %b::text, %b::integer)"
)
CALL_MANY = sql.SQL(
    "SELECT {schema}.{function}(%b::{id_type}[], %b::text, %b::bytea[], %b::text, "
    "%b::integer[], %b::text[], %b::double precision, %b::text[], %b::integer[])"
)


def function_names(events_table: str) -> tuple[str, str]:
    """The one-job and the batch function's names."""
    return f"{events_table}_append_new_job", f"{events_table}_append_new_jobs"


def create_statements(
    schema: str, events_table: str, id_type: str, lock_timeout: float
) -> list[sql.Composed]:
    """Both functions, each starting with the ordering section (``log_order.section``: the
    one-row form for the one-job function)."""
    one, many = function_names(events_table)
    names = {"schema": sql.Identifier(schema), "table": sql.Identifier(events_table),
             "id_type": sql.Identifier(id_type)}
    return [
        ONE.format(function=sql.Identifier(one),
                   section=section(schema, events_table, lock_timeout, one=True), **names),
        MANY.format(function=sql.Identifier(many),
                    section=section(schema, events_table, lock_timeout), **names),
    ]  # fmt: skip


def call_statements(schema: str, events_table: str, id_type: str) -> tuple[sql.Composed, ...]:
    """The calls of the one-job and the batch function."""
    one, many = function_names(events_table)
    names = {"schema": sql.Identifier(schema), "id_type": sql.Identifier(id_type)}
    return (CALL_ONE.format(function=sql.Identifier(one), **names),
            CALL_MANY.format(function=sql.Identifier(many), **names))


def call(
    calls: tuple[sql.Composed, ...], ids: list[UUID], topic: str, states: list[bytes],
    messages: NewJobMessages | None,
) -> tuple[sql.Composed, tuple[Any, ...]]:
    """The call of ``calls`` (:func:`call_statements`) that appends these jobs, and its
    parameters: scalars for one job, arrays for more; no queue rows without
    ``messages``."""
    one, many = calls
    if len(ids) == 1:
        if messages is None:
            return one, (ids[0], topic, states[0], None, "", 0.0, "", 0)
        return one, (ids[0], topic, states[0], messages.queue, messages.bodies[0],
                     messages.sent_at, messages.job_queues[0], messages.priorities[0])
    if messages is None:
        return many, (ids, topic, states, None, [], [], 0.0, [], [])
    return many, (ids, topic, states, messages.queue, messages.indexes, messages.bodies,
                  messages.sent_at, messages.job_queues, messages.priorities)
