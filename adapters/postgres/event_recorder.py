"""The ledger's event recorder on PostgreSQL: one statement per append.

eventsourcing's ``PostgresApplicationRecorder`` appends in an explicit transaction:
``BEGIN``, ``SET LOCAL lock_timeout``, ``LOCK TABLE ... IN EXCLUSIVE MODE``, ``NOTIFY``,
the ``INSERT``, a pipeline sync, then ``COMMIT``: several round trips to the server for
every ``save()``. On the ledger's hot single-command paths (an enqueue, a claim, a
completion) those round trips cost more than the durable commit itself.

This recorder does the same work in one statement: a PL/pgSQL function that orders the
append and inserts the events from four arrays, called on an autocommit connection, so
the statement is its own transaction; listeners are notified by a statement after it.
Appends no longer wait for each other's commits: each row carries its transaction id,
ids are handed out in transaction-id order, and readers stop at the settled head, so a
reader tailing the log never passes over an id committed later
(:mod:`adapters.postgres.log_order`, ADR 150).
A duplicate ``(originator_id, originator_version)`` still fails the whole append with an
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

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import (
    ApplicationRecorder,
    IntegrityError,
    Notification,
    StoredEvent,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore, PostgresFactory
from psycopg import sql
from psycopg.rows import tuple_row

from adapters.postgres import new_jobs, outbox
from adapters.postgres.append_cursor import kept_cursor, rendered
from adapters.postgres.log_order import (
    ADD_COLUMN,
    APPEND_FUNCTION,
    HEAD_FUNCTION,
    NOTIFY,
    NOTIFY_IN_FUNCTION,
    head_function_name,
    section,
)
from adapters.postgres.notifier import Notifier
from adapters.postgres.notify_connection import NotifyConnection
from adapters.postgres.recording import (
    JOINED,
    CatalogCheckedTypes,
    LedgerSnapshotRecorder,
    reconnecting,
)
from adapters.postgres.stream_reads import StreamReads
from ledger.new_jobs import NewJobMessages
from ledger.outbox import OUTBOX

CREATE_UNDER_LOCK = sql.SQL(
    "DO $do$ BEGIN PERFORM pg_advisory_xact_lock(hashtext({key})); {create}; END $do$"
)
SAVEPOINT = b"SAVEPOINT ledger_joined_append"
RELEASE_SAVEPOINT = b"RELEASE SAVEPOINT ledger_joined_append"
UNDO_SAVEPOINT = b"ROLLBACK TO SAVEPOINT ledger_joined_append"
"""The joined append's savepoint (a version conflict undoes only the append), as bytes."""
CALL_APPEND = sql.SQL(
    "SELECT * FROM {schema}.{function}(%b::{id_type}[], %b::bigint[], %b::text[], %b::bytea[])"
)
SELECT_SETTLED = sql.SQL(
    "SELECT notification_id, originator_id, originator_version, topic, state "
    "FROM {schema}.{table} WHERE notification_id >= %(start)s "
    "AND notification_id <= least(%(stop)s, (SELECT {schema}.{head}())) "
    "AND (%(any_topic)s OR topic = ANY(%(topics)s)) "
    "ORDER BY notification_id LIMIT %(limit)s"
)
"""eventsourcing's ``select_notifications``, up to the settled head (ADR 150)."""
MAX_POSITION = 2**63 - 1
SETTLED_HEAD = sql.SQL("SELECT {schema}.{head}()")


class LedgerEventRecorder(StreamReads, CatalogCheckedTypes, PostgresApplicationRecorder):
    """``PostgresApplicationRecorder`` whose appends are one statement, one round trip."""

    select_events = reconnecting(PostgresApplicationRecorder.select_events)

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        self.append_function_name = f"{self.events_table_name}_append"
        self.check_identifier_length(self.append_function_name)
        schema = sql.Identifier(self.datastore.schema)
        function = sql.Identifier(self.append_function_name)
        id_type = sql.Identifier(self.datastore.originator_id_type)
        table = sql.Identifier(self.events_table_name)
        head = sql.Identifier(head_function_name(self.events_table_name))
        self.check_identifier_length(head_function_name(self.events_table_name))
        qualified = f'"{self.datastore.schema}"."{self.events_table_name}"'
        self.sql_create_statements.append(ADD_COLUMN.format(
            schema=schema, table=table, qualified=sql.Literal(qualified),
            index=sql.Identifier(f"{self.events_table_name}_transaction_id"),
            index_qualified=sql.Literal(
                f'"{self.datastore.schema}"."{self.events_table_name}_transaction_id"'
            ),
        ))
        self.quiet_append_function_name = f"{self.events_table_name}_append_quiet"
        self.check_identifier_length(self.quiet_append_function_name)
        channel = sql.Identifier(self.channel_name)
        ordering = section(
            self.datastore.schema, self.events_table_name, self.datastore.lock_timeout
        )
        for name, notify in (
            (self.append_function_name, NOTIFY_IN_FUNCTION.format(channel=channel)),
            (self.quiet_append_function_name, sql.SQL("")),
        ):
            create = APPEND_FUNCTION.format(
                schema=schema, function=sql.Identifier(name), id_type=id_type, table=table,
                notify=notify, section=ordering,
            )
            self.sql_create_statements.append(
                CREATE_UNDER_LOCK.format(key=sql.Literal(self.append_function_name), create=create)
            )
        self.sql_create_statements.append(CREATE_UNDER_LOCK.format(
            key=sql.Literal(self.append_function_name),
            create=HEAD_FUNCTION.format(schema=schema, function=head, table=table),
        ))
        self.check_identifier_length(outbox.function_name(self.events_table_name))
        self.sql_create_statements.append(CREATE_UNDER_LOCK.format(  # ADR 151
            key=sql.Literal(self.append_function_name), create=outbox.create_statement(
                self.datastore.schema, self.events_table_name,
                self.quiet_append_function_name, self.datastore.originator_id_type,
            ),
        ))
        self.outbox_statement = outbox.call_statement(
            self.datastore.schema, self.events_table_name, self.datastore.originator_id_type,
            self.quiet_append_function_name,
        )
        self._create_unflushed_outbox()
        self._create_new_jobs()
        self.select_settled_statement = SELECT_SETTLED.format(
            schema=schema, table=table, head=head
        )
        self.settled_head_statement = SETTLED_HEAD.format(schema=schema, head=head)
        self.append_statement = CALL_APPEND.format(
            schema=schema, function=function, id_type=id_type
        )
        self.quiet_append_statement = CALL_APPEND.format(
            schema=schema, function=sql.Identifier(self.quiet_append_function_name),
            id_type=id_type,
        )
        self.notify_statement = NOTIFY.format(channel=channel)
        self.notify_connection = NotifyConnection(self._notify_connect, self.notify_statement)
        self.notifier = Notifier(
            self.notify_connection.send, on_idle=self.notify_connection.release
        )
        self._compose_stream_reads()

    def _create_unflushed_outbox(self) -> None:
        """The outbox append whose commit does not wait for its WAL flush (ADR 175)."""
        schema, table = self.datastore.schema, self.events_table_name
        id_type = self.datastore.originator_id_type
        self.check_identifier_length(outbox.unflushed_function_name(table))
        self.sql_create_statements.append(CREATE_UNDER_LOCK.format(
            key=sql.Literal(self.append_function_name),
            create=outbox.create_unflushed_statement(schema, table, id_type),
        ))
        self.outbox_unflushed_statement = outbox.call_statement(
            schema, table, id_type, self.quiet_append_function_name, flushed=False
        )

    def _create_new_jobs(self) -> None:
        """The appends of new jobs with their queue rows in few parameters (ADR 212)."""
        schema, table = self.datastore.schema, self.events_table_name
        id_type = self.datastore.originator_id_type
        for name in new_jobs.function_names(table):
            self.check_identifier_length(name)
        for create in new_jobs.create_statements(
            schema, table, id_type, self.datastore.lock_timeout
        ):
            self.sql_create_statements.append(CREATE_UNDER_LOCK.format(
                key=sql.Literal(self.append_function_name), create=create
            ))
        self.new_jobs_calls = new_jobs.call_statements(schema, table, id_type)

    @reconnecting
    def select_notifications(
        self, start: int | None, limit: int, stop: int | None = None,
        topics: Sequence[str] = (), *, inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        """eventsourcing's query, up to the settled head: a reader that follows the log
        with it never passes over an event committed later (ADR 150)."""
        first = 0 if start is None else start if inclusive_of_start else start + 1
        params = {
            "start": first, "stop": MAX_POSITION if stop is None else stop,
            "any_topic": not topics, "topics": list(topics), "limit": limit,
        }
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(self.select_settled_statement, params, prepare=True)
            return [
                Notification(id=row[0], originator_id=row[1], originator_version=row[2],
                             topic=row[3], state=bytes(row[4]))
                for row in curs.fetchall()
            ]

    @reconnecting
    def max_notification_id(self) -> int | None:
        """The settled head: the last id a reader may read (``None`` for an empty log)."""
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(self.settled_head_statement, prepare=True)
            row = curs.fetchone()
        return int(row[0]) or None if row else None

    @contextmanager
    def joined(self, conn: psycopg.Connection[Any]) -> Iterator[None]:
        """Appends made by this thread meanwhile run on ``conn``, inside the caller's open
        transaction (a savepoint each, so a version conflict undoes only the append);
        the caller commits, then sends :attr:`notify_statement` (ADR 155)."""
        JOINED.conn = conn
        try:
            yield
        finally:
            JOINED.conn = None

    def _insert_joined(
        self, conn: psycopg.Connection[Any], params: tuple[list[Any], ...]
    ) -> list[int]:
        # a cursor kept per statement and bytes rendered once, the savepoint's too (psycopg's
        # nested transaction composed SAVEPOINT and RELEASE on each call): ADR 192
        statement = rendered(self.quiet_append_statement, conn)
        kept_cursor(conn, SAVEPOINT).execute(SAVEPOINT)
        try:
            ids = [row[0] for row in
                   kept_cursor(conn, statement).execute(statement, params, prepare=True)]
        except Exception as error:
            kept_cursor(conn, UNDO_SAVEPOINT).execute(UNDO_SAVEPOINT)
            kept_cursor(conn, RELEASE_SAVEPOINT).execute(RELEASE_SAVEPOINT)
            if isinstance(error, psycopg.IntegrityError):
                raise IntegrityError(str(error)) from error
            raise
        kept_cursor(conn, RELEASE_SAVEPOINT).execute(RELEASE_SAVEPOINT)
        return ids

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
        return self._append(params, kwargs)

    @reconnecting
    def insert_rows(self, rows: tuple[list[Any], ...], **kwargs: Any) -> None:
        """``insert_events`` for the columns as they are (ids, versions, topics, states):
        a batch of new jobs makes no ``StoredEvent`` (``ledger/new_jobs.py``, ADR 185)."""
        if rows[0]:
            self._append(rows, kwargs)

    @reconnecting
    def append_new_jobs(
        self, ids: list[UUID], topic: str, states: list[bytes],
        messages: NewJobMessages | None,
    ) -> bool:
        """New jobs and their queue rows in one statement that takes only what varies
        (``new_jobs.py``, ADR 212); ``False`` inside a joined transaction or a scheduler's
        unflushed round, which append the general way."""
        if not ids or getattr(JOINED, "conn", None) is not None or outbox.unflushed():
            return False
        self._execute(*new_jobs.call(self.new_jobs_calls, ids, topic, states, messages))
        return True

    def _append(self, params: tuple[list[Any], ...], kwargs: dict[str, Any]) -> list[int]:
        joined = getattr(JOINED, "conn", None)
        if joined is not None:
            return self._insert_joined(joined, params)
        statement = self.quiet_append_statement
        if (batch := kwargs.get(OUTBOX)) is not None:  # the queue rows too: ADR 151
            statement, params = self.outbox_statement, outbox.call_params(params, batch)
            if outbox.unflushed():  # a scheduler round's releases (ADR 175)
                statement = self.outbox_unflushed_statement
        return [row[0] for row in self._execute(statement, params)]

    def _execute(self, statement: sql.Composed, params: tuple[Any, ...]) -> list[Any]:
        """An append's one statement, its own transaction; its rows. The log's listeners
        are told after the commit, off this path (``notifier.py``)."""
        with self.datastore.get_connection() as conn:  # its cursor kept: ADRs 187, 192
            query = rendered(statement, conn)
            curs = kept_cursor(conn, query)
            curs.execute(query, params, prepare=True)
            rows = curs.fetchall()
        self.notifier.poke()
        return rows

    def _notify_connect(self) -> psycopg.Connection[Any]:
        """A connection of the notifier's own, like the pool's (ADR 206)."""
        pool = self.datastore.pool
        given = pool.kwargs() if callable(pool.kwargs) else pool.kwargs
        kwargs = {k: v for k, v in (given or {}).items() if k != "row_factory"}
        if pool.get_password_func is not None:
            kwargs["password"] = pool.get_password_func()
        kwargs.setdefault("connect_timeout", 10)
        conninfo = pool.conninfo() if callable(pool.conninfo) else pool.conninfo
        return psycopg.connect(conninfo, autocommit=True, **kwargs)


class LedgerPostgresFactory(PostgresFactory):
    """eventsourcing's factory with the ledger's recorders (``PERSISTENCE_MODULE``)."""

    application_recorder_class = LedgerEventRecorder
    aggregate_recorder_class = LedgerSnapshotRecorder

    def application_recorder(self) -> ApplicationRecorder:
        recorder = super().application_recorder()
        self._recorders = [*getattr(self, "_recorders", []), recorder]
        return recorder

    def close(self) -> None:
        """The notifiers' connections too (ADR 206), then the pool."""
        for recorder in getattr(self, "_recorders", []):
            if isinstance(recorder, LedgerEventRecorder):
                recorder.notify_connection.close()
        super().close()
