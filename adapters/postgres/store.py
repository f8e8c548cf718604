"""The views on PostgreSQL: the runner's, rebuild's and verify's store.

Two sessions: ``conn`` does the work (pages, swaps, snapshots); ``control`` (autocommit)
holds the session-level advisory locks (one per view: released by PostgreSQL when the
process dies, so a waiting runner takes over) and LISTENs on the channel eventsourcing
NOTIFYs on every append. Events are read as raw rows with binary transfer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.rows import class_row, dict_row
from psycopg.types.string import TextLoader

from adapters.postgres import ddl, page_writes
from adapters.postgres.errors import translated
from adapters.postgres.log_order import head_function_name, log_channel
from adapters.sql.sqlfile import load_sections
from projections.events import RawRow
from projections.model import Key, PageState, Row, Table, View
from projections.queries import QueryRow
from projections.store import LIVE, Tracking

QUERIES = load_sections("adapters.postgres", "queries.sql")

READ_EVENTS = sql.SQL(
    "SELECT notification_id, originator_id::text, originator_version, topic, state "
    "FROM {events} WHERE notification_id > %s AND notification_id <= (SELECT {head}()) "
    "ORDER BY notification_id LIMIT %s"
)
READ_EVENTS_UPTO = sql.SQL(
    "SELECT notification_id, originator_id::text, originator_version, topic, state "
    "FROM {events} WHERE notification_id > %s "
    "AND notification_id <= least(%s, (SELECT {head}())) "
    "ORDER BY notification_id LIMIT %s"
)
HEAD = sql.SQL("SELECT {head}()")
HELD_BACK = sql.SQL("SELECT count(*) FROM {events} WHERE notification_id > (SELECT {head}())")
"""The log is read up to its settled head, the function the event recorder creates
(adapters/postgres/log_order.py, ADR 150): no event commits later below it. Called in a
scalar subquery, so it runs once per statement (an init plan), not once per row."""
STREAM_VERSION_AT = sql.SQL(
    "SELECT originator_version FROM {events} WHERE originator_id = %s "
    "AND notification_id <= %s ORDER BY originator_version DESC LIMIT 1"
)
LISTEN = sql.SQL("LISTEN {channel}")
TRY_LOCK = "SELECT pg_try_advisory_lock(%s)"
IS_LOCKED = (
    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND classid::bigint = %s AND objid::bigint = %s AND objsubid = 1)"
)
UNLOCK = "SELECT pg_advisory_unlock(%s)"
SELECT_TRACKING = (
    "SELECT view_name AS view, position, generation, owner, error, updated_at "
    "FROM projection_tracking WHERE view_name = %s"
)
SELECT_ALL_TRACKING = (
    "SELECT view_name AS view, position, generation, owner, error, updated_at "
    "FROM projection_tracking ORDER BY view_name"
)
ADVANCE = (
    "UPDATE projection_tracking SET position = %s, owner = %s, error = NULL, updated_at = now() "
    "WHERE view_name = %s AND position = %s AND generation = %s"
)
ADVANCE_MANY = (
    "UPDATE projection_tracking AS t SET position = %s, owner = %s, error = NULL, "
    "updated_at = now() FROM unnest(%s::text[], %s::bigint[], %s::integer[]) "
    "AS e(view_name, position, generation) WHERE t.view_name = e.view_name "
    "AND t.position = e.position AND t.generation = e.generation"
)
"""Several views moved together to one position (a page's one transaction, issue 19)."""
INSERT_TRACKING = (
    "INSERT INTO projection_tracking (view_name, position, generation, owner) "
    "VALUES (%s, %s, %s, %s) ON CONFLICT (view_name) DO NOTHING"
)
LOCK_TRACKING = (
    "SELECT view_name AS view, position, generation, owner, error, updated_at "
    "FROM projection_tracking WHERE view_name = %s FOR UPDATE"
)
SET_TRACKING = (
    "UPDATE projection_tracking SET position = %s, generation = %s, error = NULL, "
    "updated_at = now() WHERE view_name = %s"
)
RECORD_ERROR = (
    "INSERT INTO projection_tracking (view_name, owner, error) VALUES (%s, %s, %s) "
    "ON CONFLICT (view_name) DO UPDATE SET error = EXCLUDED.error, owner = EXCLUDED.owner, "
    "updated_at = now()"
)
BEGIN_SNAPSHOT = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
SWAP_LOCK_TIMEOUT = "SET LOCAL lock_timeout = '10s'"


def lock_key(name: str) -> int:
    """A stable 64-bit advisory lock key for a lock name."""
    digest = hashlib.blake2b(f"job-ledger:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


ASYNC_COMMIT = "SET synchronous_commit = off"
NO_JIT = "SET jit = off"
"""The views' sessions never JIT-compile (ADR 170): their reads are bounded (keyset pages,
capped counts, one job), yet an estimate over a large table can pass ``jit_above_cost``,
and the compile (about 50 ms at 1,000,000 jobs) then costs more than the query."""


def connect(url: str, *, autocommit: bool = True) -> psycopg.Connection[Any]:
    """A session in UTC whose uuid values are read as canonical text (the views' keys)."""
    conn = psycopg.connect(url, autocommit=autocommit, connect_timeout=10)
    conn.execute("SET TIME ZONE 'UTC'")
    conn.adapters.register_loader("uuid", TextLoader)
    return conn


class PostgresViewStore:
    """A :class:`projections.store.ViewStore` on PostgreSQL."""

    backend = "postgres"

    def __init__(self, url: str, events_table: str) -> None:
        self.url = url
        self.events_table = events_table
        self.conn = connect(url)
        # Everything this session writes is derived from the log and moves together with
        # its tracking position (views, the dispatcher's position): a server crash can
        # lose the last few of those commits, which only moves a position back, and the
        # events are applied or sent again. So its commits do not wait for the disk
        # (ADR 6); the log itself is always committed durably.
        self.conn.execute(ASYNC_COMMIT)
        self.conn.execute(NO_JIT)
        self._control: psycopg.Connection[Any] | None = None
        self._locks: set[str] = set()
        events = sql.Identifier(events_table)
        head = sql.Identifier(head_function_name(events_table))
        self._read = READ_EVENTS.format(events=events, head=head)
        self._read_upto = READ_EVENTS_UPTO.format(events=events, head=head)
        self._head = HEAD.format(head=head)
        self._held_back = HELD_BACK.format(events=events, head=head)
        self._stream_version_at = STREAM_VERSION_AT.format(events=events)
        self._channel = log_channel(events_table)

    @property
    @translated()
    def control(self) -> psycopg.Connection[Any]:
        if self._control is None:
            self._control = connect(self.url)
            self._control.execute(LISTEN.format(channel=sql.Identifier(self._channel)))
        return self._control

    @translated()
    def close(self) -> None:
        for conn in (self._control, self.conn):
            if conn is not None and not conn.closed:
                conn.close()
        self._locks.clear()

    # -- the log ------------------------------------------------------------------------

    @translated()
    def head(self) -> int:
        row = self.conn.execute(self._head).fetchone()
        return int(row[0]) if row else 0

    @translated()
    def held_back(self) -> int:
        """Committed events past the settled head (an older transaction still runs)."""
        row = self.conn.execute(self._held_back).fetchone()
        return int(row[0]) if row else 0

    @translated()
    def read_events(self, after: int, limit: int, upto: int | None = None) -> list[RawRow]:
        with self.conn.cursor(binary=True) as cur:
            if upto is None:
                cur.execute(self._read, (after, limit))
            else:
                cur.execute(self._read_upto, (after, upto, limit))
            return cur.fetchall()

    @translated()
    def stream_version_at(self, originator_id: UUID, position: int) -> int:
        row = self.conn.execute(self._stream_version_at, (originator_id, position)).fetchone()
        return int(row[0]) if row else 0

    @translated()
    def wait_for_events(self, timeout: float) -> None:
        for _ in self.control.notifies(timeout=timeout, stop_after=1):
            pass

    # -- locks --------------------------------------------------------------------------

    @translated()
    def try_lock(self, name: str) -> bool:
        if name in self._locks:
            return True
        row = self.control.execute(TRY_LOCK, (lock_key(name),)).fetchone()
        if row and row[0]:
            self._locks.add(name)
            return True
        return False

    @translated()
    def unlock(self, name: str) -> None:
        if name in self._locks:
            self._locks.discard(name)
            if self._control is not None and not self._control.closed:
                self._control.execute(UNLOCK, (lock_key(name),))

    @translated()
    def is_locked(self, name: str) -> bool:
        key = lock_key(name) & 0xFFFF_FFFF_FFFF_FFFF  # pg_locks shows the two 32-bit halves
        row = self.conn.execute(IS_LOCKED, (key >> 32, key & 0xFFFF_FFFF)).fetchone()
        return bool(row and row[0])

    # -- tracking ------------------------------------------------------------------------

    @translated()
    def tracking(self, view: str) -> Tracking:
        with self.conn.cursor(row_factory=class_row(Tracking)) as cur:
            row = cur.execute(SELECT_TRACKING, (view,)).fetchone()
        return row or Tracking(view, 0, 0)

    @translated()
    def all_tracking(self) -> list[Tracking]:
        with self.conn.cursor(row_factory=class_row(Tracking)) as cur:
            return cur.execute(SELECT_ALL_TRACKING).fetchall()

    @translated()
    def record_error(self, view: str, error: str | None, owner: str | None) -> None:
        with self.conn.transaction():
            self.conn.execute(RECORD_ERROR, (view, owner, error))

    # -- writing ------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with translated(), self.conn.transaction():
            yield

    @translated()
    def advance(self, expected: Tracking, position: int, owner: str) -> bool:
        cur = self.conn.execute(
            ADVANCE,
            (position, owner, expected.view, expected.position, expected.generation),
        )
        if cur.rowcount == 1:
            return True
        if expected.position == 0 and expected.generation == 0:
            cur = self.conn.execute(INSERT_TRACKING, (expected.view, position, 0, owner))
            return cur.rowcount == 1
        return False

    @translated()
    def advance_many(self, expected: Sequence[Tracking], position: int, owner: str) -> bool:
        """Move every view from its ``expected`` to ``position`` in one statement; False
        if any is not there (the caller's transaction then rolls back)."""
        if any(e.position == 0 and e.generation == 0 for e in expected):
            return all(self.advance(e, position, owner) for e in expected)
        cur = self.conn.execute(ADVANCE_MANY, _advance_params(expected, position, owner))
        return cur.rowcount == len(expected)

    @translated()
    def commit_page(self, expected: Sequence[Tracking], position: int, owner: str,
                    writes: Sequence[tuple[View, PageState]]) -> bool | None:  # fmt: skip
        """Every view's rows and its position moved from ``expected`` in one pipelined
        transaction (``page_writes``, ADR 200); False (rolled back) if a view moved;
        None, nothing done, for a view's first tracking row or a libpq without pipelines."""
        if not page_writes.supported() or any(
            e.position == 0 and e.generation == 0 for e in expected
        ):
            return None
        params = _advance_params(expected, position, owner)
        return page_writes.commit_page(
            self.conn, self.transaction, writes, LIVE, advance=(ADVANCE_MANY, params),
            views=len(expected),
        )  # fmt: skip

    @translated()
    def lock_tracking(self, view: str) -> Tracking:
        self.conn.execute(SWAP_LOCK_TIMEOUT)
        self.conn.execute(INSERT_TRACKING, (view, 0, 0, None))
        with self.conn.cursor(row_factory=class_row(Tracking)) as cur:
            row = cur.execute(LOCK_TRACKING, (view,)).fetchone()
        assert row is not None
        return row

    @translated()
    def set_tracking(self, view: str, position: int, generation: int) -> None:
        self.conn.execute(SET_TRACKING, (position, generation, view))

    @translated()
    def load(self, table: Table, suffix: str, keys: Collection[Key]) -> dict[Key, Row]:
        names = table.names
        if len(table.key) != 1:
            key_columns = page_writes.columns(list(keys))
            cur = self.conn.execute(ddl.select_by_key(table, suffix), key_columns)
            return {
                table.key_of(row): row
                for row in (dict(zip(names, raw, strict=True)) for raw in cur.fetchall())
            }
        cur = self.conn.execute(ddl.select_by_key(table, suffix), ([k[0] for k in keys],))
        (key,) = table.key
        return {
            (row[key],): row
            for row in (dict(zip(names, raw, strict=True)) for raw in cur.fetchall())
        }

    @translated()
    def apply(self, view: View, suffix: str, state: PageState) -> None:
        """The view's rows in ``state``, table by table; appended rows by COPY."""
        for table in view.tables:
            for statement, args in page_writes.statements(table, suffix, state, copy_from=0):
                self.conn.execute(statement, args)
            page_writes.copy_table(self.conn, table, suffix, state, copy_from=0)

    # -- rebuild and verify ---------------------------------------------------------------

    @translated()
    def create_tables(self, view: View, suffix: str) -> None:
        with self.conn.transaction():
            for table in view.tables:
                self.conn.execute(ddl.DROP_TABLE.format(table=ddl.table_id(table, suffix)))
                for statement in ddl.create_table(table, suffix):
                    self.conn.execute(statement)

    @translated()
    def drop_tables(self, view: View, suffix: str) -> None:
        idle = psycopg.pq.TransactionStatus.IDLE
        if self.conn.closed or self.conn.info.transaction_status != idle:
            return
        with self.conn.transaction():
            for table in view.tables:
                self.conn.execute(ddl.DROP_TABLE.format(table=ddl.table_id(table, suffix)))

    @translated()
    def replace_tables(self, view: View, suffix: str) -> None:
        for table in view.tables:
            for statement in ddl.rename_tables(table, suffix):
                self.conn.execute(statement)

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        with translated():
            self.conn.execute(BEGIN_SNAPSHOT)
            try:
                yield
            finally:
                self.conn.execute("ROLLBACK")

    def rows(self, table: Table, suffix: str) -> Iterator[tuple[Any, ...]]:
        with translated(), self.conn.cursor() as cur:
            yield from cur.stream(ddl.select_ordered(table, suffix))

    @translated()
    def count(self, table: Table, suffix: str) -> int:
        row = self.conn.execute(ddl.count_rows(table, suffix)).fetchone()
        return int(row[0]) if row else 0

    @translated()
    def query(self, name: str, params: Mapping[str, Any]) -> list[QueryRow]:
        """Run the named read-side query of queries.sql (for projections/queries/)."""
        (statement,) = QUERIES[name]
        with self.conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(statement, dict(params)).fetchall()


def _advance_params(expected: Sequence[Tracking], position: int, owner: str) -> tuple[Any, ...]:
    return (position, owner, [e.view for e in expected], [e.position for e in expected],
            [e.generation for e in expected])  # fmt: skip
