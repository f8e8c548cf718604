"""The recorder's reads of many jobs at once (the claims' prefetch and queue lookups, the
scheduler's releases): each wanted id's latest snapshot and the events after it, or each
id's stored version, in one statement (ADRs 175, 191, 192). A mixin of
:class:`~adapters.postgres.event_recorder.LedgerEventRecorder`, which composes its
statements once (:meth:`StreamReads._compose_stream_reads`)."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresDatastore
from psycopg import sql

from adapters.postgres.append_cursor import kept_cursor, rendered
from adapters.postgres.recording import reconnecting
from adapters.postgres.session_jit import jit_off

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
# ``select_streams``' plan is estimated far above ``jit_above_cost`` (its per-id lookups
# are guessed at dozens of rows each), so PostgreSQL compiled it on every call: about
# 0.5 s of JIT for a batch of 1,000 jobs whose lookups take 10 ms. Its session turns JIT
# off once (``adapters/postgres/session_jit.py``, ADR 191).


class StreamReads:
    """``select_streams`` and ``select_versions`` for a recorder of ``events_table_name``."""

    datastore: PostgresDatastore
    events_table_name: str

    def _compose_stream_reads(self) -> None:
        """The statements that do not depend on a snapshots table, composed once."""
        schema = sql.Identifier(self.datastore.schema)
        table = sql.Identifier(self.events_table_name)
        id_type = sql.Identifier(self.datastore.originator_id_type)
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
        # one statement on the autocommit connection, its own transaction: no ROLLBACK,
        # which psycopg answers with DEALLOCATE ALL (ADR 175); JIT off per session (ADR 191)
        with self.datastore.get_connection() as conn:
            jit_off(conn)  # tuples: a dict per row was a tenth of a batch's read
            statement = rendered(self._streams_statement(snapshots_table), conn)
            curs = kept_cursor(conn, statement)  # dumpers chosen once (ADR 192)
            curs.execute(statement, (list(ids),), prepare=True)
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
        # rendered once, the kept cursor (ADR 192): a claims batch's queue lookup
        with self.datastore.get_connection() as conn:
            statement = rendered(self.select_versions_statement, conn)
            curs = kept_cursor(conn, statement)
            curs.execute(statement, (list(ids),), prepare=True)
            return {row[0]: row[1] for row in curs.fetchall() if row[1] is not None}
