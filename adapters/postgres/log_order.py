"""Concurrent appends on PostgreSQL with readers that never skip an event (ADR 150).

An append no longer holds the events table's EXCLUSIVE lock until its commit. Instead:

- **Each row carries its transaction** (``transaction_id xid8``), and an appender takes
  its transaction id and its notification ids together, in a section serialised by a
  transaction-level advisory lock taken inside a subtransaction that is then rolled back
  on purpose: the rollback releases the lock at once (before the append's commit), while
  the sequence values and the top-level transaction id it took stay. So ids are handed
  out in transaction-id order, and the section is microseconds long whatever the commit
  costs.
- **A transaction that already had its id** before it appended (the application's own
  transaction under ``enqueue_in``, or a second append in one transaction) cannot be
  ordered that way: it takes the EXCLUSIVE lock as before, which waits for every append in
  flight (each holds ROW EXCLUSIVE from before its section until it ends) and holds back
  the others until it ends.
- **Readers stop at the settled head**: the rows of the log are read in notification id
  order up to, and not including, the first visible row whose transaction is not below
  ``pg_snapshot_xmin(pg_current_snapshot())`` (the oldest transaction still running). A
  row below that bound can no longer be preceded by a row that commits later.
  :data:`HEAD_FUNCTION` computes that bound; the view store, the dispatcher and
  eventsourcing's ``select_notifications`` all read up to it.

The cost is that one long transaction anywhere on the server holds every reader back
until it ends (the log's head is not reported past it either).
"""

from __future__ import annotations

import hashlib

from psycopg import sql

ADD_COLUMN = sql.SQL(
    "DO $do$ BEGIN "
    "IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = {qualified}::regclass "
    "AND attname = 'transaction_id' AND NOT attisdropped) THEN "
    "ALTER TABLE {schema}.{table} ADD COLUMN transaction_id xid8 NOT NULL DEFAULT '0'; "
    "ALTER TABLE {schema}.{table} ALTER COLUMN transaction_id "
    "SET DEFAULT pg_current_xact_id(); "
    "END IF; "
    "IF to_regclass({index_qualified}) IS NULL THEN "
    "CREATE INDEX {index} ON {schema}.{table} (transaction_id); "
    "END IF; "
    "END $do$"
)
"""The column (rows already there get 0: committed long ago) and its index (the settled
head looks up the few rows at or above the oldest running transaction). Checked in the
catalog first: ``ALTER TABLE`` would take an ACCESS EXCLUSIVE lock at every start."""

SECTION = sql.SQL(
    "SET LOCAL lock_timeout = {lock_timeout}; "
    "IF pg_current_xact_id_if_assigned() IS NULL THEN "
    "LOCK TABLE {schema}.{table} IN ROW EXCLUSIVE MODE; "
    "ELSE "
    "LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; "
    "END IF; "
    "BEGIN "
    "PERFORM pg_advisory_xact_lock({section}); "
    "txid := pg_current_xact_id(); "
    "{take} "
    "RAISE SQLSTATE 'JL150'; "
    "EXCEPTION WHEN SQLSTATE 'JL150' THEN NULL; "
    "END; "
)
"""The start of every append function (this one's and the new jobs', ADR 212): ROW
EXCLUSIVE (or EXCLUSIVE for a transaction that had its id already), then the ordering
section, which sets the function's ``txid`` and runs ``{take}`` (its notification ids,
:data:`TAKE_POSITIONS` or :data:`TAKE_POSITION`). The section's lock is released by the
rollback of the inner block; the values it took survive. The section waits on nothing but
its own lock, so it cannot take part in a deadlock."""
TAKE_POSITIONS = sql.SQL(
    "FOR i IN 1..cardinality(ids) LOOP "
    "positions[i] := nextval({sequence}::regclass); "
    "END LOOP;"
)
"""One id per row into ``positions``, in the order taken (one backend's ``nextval`` only
ever grows). A loop of simple expressions, not ``ARRAY(SELECT nextval(...) FROM
generate_series(...) ORDER BY 1)``: that query cost an append 10 µs of server CPU and
30-40 µs of latency under durable commits (pgbench, ADR 212)."""
TAKE_POSITION = sql.SQL("position := nextval({sequence}::regclass);")
"""The one id of a one-row append into ``position``."""

APPEND_FUNCTION = sql.SQL(
    "CREATE OR REPLACE FUNCTION {schema}.{function}("
    "ids {id_type}[], versions bigint[], topics text[], states bytea[]) "
    "RETURNS SETOF bigint LANGUAGE plpgsql AS $fn$ "
    "DECLARE positions bigint[]; txid xid8; "
    "BEGIN "
    "{section}"
    "{notify}"
    "RETURN QUERY INSERT INTO {schema}.{table} "
    "(originator_id, originator_version, topic, state, notification_id, transaction_id) "
    "SELECT u.*, txid FROM unnest(ids, versions, topics, states, positions) AS u "
    "RETURNING notification_id; "
    "END $fn$"
)
"""The append: the ordering :data:`SECTION`, then NOTIFY (:data:`NOTIFY_IN_FUNCTION`, or
nothing) and the INSERT."""

NOTIFY_IN_FUNCTION = sql.SQL("NOTIFY {channel}; ")
NOTIFY = sql.SQL("NOTIFY {channel}")
"""PostgreSQL serialises the commits of transactions that NOTIFY (a global lock from
pre-commit to the end of the commit, so queue entries are in commit order): with NOTIFY
inside, concurrent appends would still wait for each other's durable commit. The
recorder's own appends call the function without it and NOTIFY in a statement of its own
after the commit (a transaction without a transaction id: no WAL flush); the function
with it is for appends inside an application's transaction (``enqueue_in``)."""

HEAD_FUNCTION = sql.SQL(
    "CREATE OR REPLACE FUNCTION {schema}.{function}() RETURNS bigint "
    "LANGUAGE plpgsql STABLE SET plan_cache_mode = force_custom_plan AS $fn$ "
    "DECLARE horizon xid8 := pg_snapshot_xmin(pg_current_snapshot()); unsettled bigint; "
    "BEGIN "
    "SELECT min(notification_id) INTO unsettled FROM (SELECT notification_id "
    "FROM {schema}.{table} WHERE transaction_id >= horizon OFFSET 0) AS running; "
    "IF unsettled IS NULL THEN "
    "RETURN coalesce((SELECT max(notification_id) FROM {schema}.{table}), 0); "
    "END IF; "
    "RETURN coalesce((SELECT max(notification_id) FROM {schema}.{table} "
    "WHERE notification_id < unsettled), 0); "
    "END $fn$"
)
"""The settled head in the caller's snapshot (a STABLE function takes no snapshot of its
own): the last notification id before the first visible row of a transaction that is not
below the oldest one running. Every row up to it is final: no row that commits later can
take an id below it. Planned for each call's horizon (a generic plan guesses a third of
the table at or above it and scans it all). The rows at or above the horizon are found by
the ``transaction_id`` index inside a fenced subquery (``OFFSET 0``): written as a plain
``min(notification_id) ... WHERE``, the planner may take the min/max shortcut instead,
walking the notification id index from the start until a row passes the filter, which
is every row of the log when none does (the usual case); until the table's statistics
were refreshed that walked the whole log on every read, a third of PostgreSQL's time per job end
to end (issue 19, docs/benchmarks.md)."""


def log_channel(events_table: str) -> str:
    """The channel the log's ``NOTIFY`` goes to: eventsourcing's name for it (the table's
    name, dots as underscores)."""
    return events_table.replace(".", "_")


def head_function_name(events_table: str) -> str:
    return f"{events_table}_head"


def section(
    schema: str, events_table: str, lock_timeout: float, *, one: bool = False
) -> sql.Composed:
    """:data:`SECTION` for the table, taking ``positions`` (or, ``one``, ``position``)."""
    sequence = sql.Literal(f'"{schema}"."{events_table}_notification_id_seq"')
    take = TAKE_POSITION if one else TAKE_POSITIONS
    return SECTION.format(
        lock_timeout=sql.Literal(f"{int(lock_timeout)}s"), schema=sql.Identifier(schema),
        table=sql.Identifier(events_table), section=sql.Literal(section_key(events_table)),
        take=take.format(sequence=sequence),
    )


def section_key(events_table: str) -> int:
    """The advisory lock key of the table's ordering section (stable across processes)."""
    digest = hashlib.blake2b(f"job-ledger:append:{events_table}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big", signed=True)
