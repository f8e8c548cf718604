"""The ledger's event recorder on PostgreSQL: one round trip per append.

eventsourcing's ``PostgresApplicationRecorder`` appends in an explicit transaction:
``BEGIN``, ``SET LOCAL lock_timeout``, ``LOCK TABLE ... IN EXCLUSIVE MODE``, ``NOTIFY``,
the ``INSERT``, a pipeline sync, then ``COMMIT``: several round trips to the server for
every ``save()``. On the ledger's hot single-command paths (an enqueue, a claim, a
completion) those round trips cost more than the durable commit itself.

This recorder does the same work in one statement: a PL/pgSQL function that takes the
table lock, notifies listeners and inserts the events from four arrays, called on an
autocommit connection, so the statement is its own transaction and the lock is held
until its commit. What readers rely on is unchanged: notification ids are handed out
under the EXCLUSIVE table lock, so they commit in the order they were issued and a
reader tailing the log never passes over a gap that is filled later. A duplicate
``(originator_id, originator_version)`` still fails the whole append with an
``IntegrityError`` (a ``RecordConflictError``), as before.

The function is created (``CREATE OR REPLACE``) with the table, under a transaction-level
advisory lock so that processes starting together do not race in the catalog. Its name
is derived from the table's, so two applications in one schema each have their own
(eventsourcing's ``POSTGRES_ENABLE_DB_FUNCTIONS`` shares one function per schema and
stays unset). See docs/adr/0005-one-round-trip-appends.md.

Every call replaces dead pooled connections once and raises the ledger's
:class:`~ledger.errors.StoreUnavailable` when the server does not answer
(:mod:`adapters.postgres.recording`); :class:`LedgerPostgresFactory` gives eventsourcing
these recorders for the events and the snapshots.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore, PostgresFactory
from psycopg import sql
from psycopg.rows import tuple_row

from adapters.postgres.recording import CatalogCheckedTypes, LedgerSnapshotRecorder, reconnecting

APPEND_FUNCTION = sql.SQL(
    "CREATE OR REPLACE FUNCTION {schema}.{function}("
    "ids {id_type}[], versions bigint[], topics text[], states bytea[]) "
    "RETURNS SETOF bigint LANGUAGE plpgsql AS $fn$ "
    "BEGIN "
    "SET LOCAL lock_timeout = {lock_timeout}; "
    "LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; "
    "NOTIFY {channel}; "
    "RETURN QUERY INSERT INTO {schema}.{table} "
    "(originator_id, originator_version, topic, state) "
    "SELECT * FROM unnest(ids, versions, topics, states) "
    "RETURNING notification_id; "
    "END $fn$"
)
CREATE_UNDER_LOCK = sql.SQL(
    "DO $do$ BEGIN PERFORM pg_advisory_xact_lock(hashtext({key})); {create}; END $do$"
)
SELECT_STREAMS = sql.SQL(
    "WITH wanted AS (SELECT DISTINCT unnest(%s::{id_type}[]) AS id), "
    "snap AS (SELECT s.* FROM wanted w CROSS JOIN LATERAL ("
    " SELECT originator_id, originator_version, topic, state FROM {schema}.{snapshots}"
    " WHERE originator_id = w.id ORDER BY originator_version DESC LIMIT 1) s) "
    "SELECT 0 AS part, originator_id, originator_version, topic, state FROM snap "
    "UNION ALL "
    "SELECT 1, e.originator_id, e.originator_version, e.topic, e.state "
    "FROM wanted w LEFT JOIN snap ON snap.originator_id = w.id CROSS JOIN LATERAL ("
    " SELECT originator_id, originator_version, topic, state FROM {schema}.{table}"
    " WHERE originator_id = w.id"
    " AND originator_version > coalesce(snap.originator_version, 0) OFFSET 0) e "
    "ORDER BY originator_id, part, originator_version"
)
"""Each wanted id's latest snapshot, then its events after it. Written with LATERAL
subqueries (the events one fenced with ``OFFSET 0`` so the planner cannot flatten it into
a hash join) so that each id is an index lookup on the (originator_id, originator_version)
primary keys whatever the statistics say: a hash join reads the whole events table."""
SELECT_STREAMS_NO_SNAPSHOTS = sql.SQL(
    "SELECT 1 AS part, originator_id, originator_version, topic, state "
    "FROM {schema}.{table} WHERE originator_id = ANY(%s::{id_type}[]) "
    "ORDER BY originator_id, originator_version"
)
SELECT_VERSIONS = sql.SQL(
    "SELECT w.id AS originator_id, (SELECT max(originator_version) FROM {schema}.{table}"
    " WHERE originator_id = w.id) AS version FROM unnest(%s::{id_type}[]) AS w(id)"
)
"""The stored version of each id (one index lookup per id: a correlated ``max``)."""
NO_JIT = "SET LOCAL jit = off"
"""``select_streams``' plan is estimated far above ``jit_above_cost`` (its per-id
lookups are guessed at dozens of rows each), so PostgreSQL compiled it on every call:
about 0.5 s of JIT for a batch of 1,000 jobs whose lookups take 10 ms."""
CALL_APPEND = sql.SQL(
    "SELECT * FROM {schema}.{function}(%b::{id_type}[], %b::bigint[], %b::text[], %b::bytea[])"
)


class LedgerEventRecorder(CatalogCheckedTypes, PostgresApplicationRecorder):
    """``PostgresApplicationRecorder`` whose appends are one statement, one round trip."""

    select_events = reconnecting(PostgresApplicationRecorder.select_events)
    select_notifications = reconnecting(PostgresApplicationRecorder.select_notifications)
    max_notification_id = reconnecting(PostgresApplicationRecorder.max_notification_id)

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        self.append_function_name = f"{self.events_table_name}_append"
        self.check_identifier_length(self.append_function_name)
        schema = sql.Identifier(self.datastore.schema)
        function = sql.Identifier(self.append_function_name)
        id_type = sql.Identifier(self.datastore.originator_id_type)
        table = sql.Identifier(self.events_table_name)
        create = APPEND_FUNCTION.format(
            schema=schema,
            function=function,
            id_type=id_type,
            lock_timeout=sql.Literal(f"{int(self.datastore.lock_timeout)}s"),
            table=table,
            channel=sql.Identifier(self.channel_name),
        )
        self.sql_create_statements.append(
            CREATE_UNDER_LOCK.format(key=sql.Literal(self.append_function_name), create=create)
        )
        self.append_statement = CALL_APPEND.format(
            schema=schema, function=function, id_type=id_type
        )
        self.select_versions_statement = SELECT_VERSIONS.format(
            schema=schema, table=table, id_type=id_type
        )
        self._stream_statements: dict[str | None, sql.Composed] = {
            None: SELECT_STREAMS_NO_SNAPSHOTS.format(schema=schema, table=table, id_type=id_type)
        }

    def _streams_statement(self, snapshots_table: str | None) -> sql.Composed:
        """``select_streams``' statement for ``snapshots_table``, composed once."""
        statement = self._stream_statements.get(snapshots_table)
        if statement is None:
            assert snapshots_table is not None  # the statement without one is made up front
            statement = self._stream_statements[snapshots_table] = SELECT_STREAMS.format(
                schema=sql.Identifier(self.datastore.schema),
                table=sql.Identifier(self.events_table_name),
                id_type=sql.Identifier(self.datastore.originator_id_type),
                snapshots=sql.Identifier(snapshots_table),
            )
        return statement

    @reconnecting
    def select_streams(
        self, ids: Sequence[UUID], snapshots_table: str | None
    ) -> dict[UUID, list[StoredEvent]]:
        """Many aggregates' stored events in one query: for each id that has any, its
        latest snapshot in ``snapshots_table`` (if given and one exists) followed by the
        events after it, in version order (what ``Repository.get`` reads with two queries
        per aggregate)."""
        streams: dict[UUID, list[StoredEvent]] = {}
        with self.datastore.transaction(commit=False) as dict_curs, \
                dict_curs.connection.cursor(row_factory=tuple_row) as curs:
            curs.execute(NO_JIT)  # tuples: a dict per row was a tenth of a batch's read
            curs.execute(self._streams_statement(snapshots_table), (list(ids),), prepare=True)
            row: tuple[int, UUID, int, str, bytes]
            for row in curs.fetchall():
                _part, originator_id, version, topic, state = row
                streams.setdefault(originator_id, []).append(StoredEvent(
                    originator_id=originator_id, originator_version=version, topic=topic,
                    state=bytes(state),
                ))
        return streams

    @reconnecting
    def select_versions(self, ids: Sequence[UUID]) -> dict[UUID, int]:
        """The latest stored version of each id that has events, in one query."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.select_versions_statement, (list(ids),), prepare=True)
            return {
                row["originator_id"]: row["version"]
                for row in curs.fetchall() if row["version"] is not None
            }

    @reconnecting
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if not stored_events:
            return []
        params = (
            [e.originator_id for e in stored_events],
            [e.originator_version for e in stored_events],
            [e.topic for e in stored_events],
            [e.state for e in stored_events],
        )
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.append_statement, params, prepare=True)
            return [row[self.append_function_name] for row in curs.fetchall()]


class LedgerPostgresFactory(PostgresFactory):
    """eventsourcing's factory with the ledger's recorders (``PERSISTENCE_MODULE``)."""

    application_recorder_class = LedgerEventRecorder
    aggregate_recorder_class = LedgerSnapshotRecorder
