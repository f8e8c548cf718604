"""The views on SQLite (the embedded default): the runner's, rebuild's and verify's store.

The views live in the ledger's own database file, beside eventsourcing's events table
(rowid is the notification id). Writes are ``BEGIN IMMEDIATE`` transactions; WAL lets
readers go on during them. One runner per view is ensured with an ``flock`` on a file per
lock under ``<data dir>/locks/``: the kernel releases it when the process dies, so a
waiting runner takes over at once. SQLite has no notifications: the runner polls
``PRAGMA data_version``, which changes when another connection commits.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any
from uuid import UUID

from adapters.sql.sqlfile import load_sections
from adapters.sqlite import ddl
from adapters.sqlite.errors import translated
from ledger.errors import StoreError
from projections.events import RawRow
from projections.model import Key, Kind, PageState, Row, Table, View
from projections.queries import QueryRow
from projections.store import Tracking

READ_EVENTS = (
    "SELECT rowid, originator_id, originator_version, topic, state FROM stored_events "
    "WHERE rowid > ? ORDER BY rowid LIMIT ?"
)
READ_EVENTS_UPTO = (
    "SELECT rowid, originator_id, originator_version, topic, state FROM stored_events "
    "WHERE rowid > ? AND rowid <= ? ORDER BY rowid LIMIT ?"
)
HEAD = "SELECT coalesce(max(rowid), 0) FROM stored_events"
STREAM_VERSION_AT = (
    "SELECT originator_version FROM stored_events WHERE originator_id = ? AND rowid <= ? "
    "ORDER BY originator_version DESC LIMIT 1"
)
EVENTS_EXIST = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'stored_events'"
DATA_VERSION = "PRAGMA data_version"
SNAPSHOT_START = "SELECT count(*) FROM sqlite_master"
SELECT_TRACKING = (
    "SELECT view_name, position, generation, owner, error, updated_at "
    "FROM projection_tracking WHERE view_name = ?"
)
SELECT_ALL_TRACKING = (
    "SELECT view_name, position, generation, owner, error, updated_at "
    "FROM projection_tracking ORDER BY view_name"
)
ADVANCE = (
    "UPDATE projection_tracking SET position = ?, owner = ?, error = NULL, "
    "updated_at = strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now') "
    "WHERE view_name = ? AND position = ? AND generation = ?"
)
INSERT_TRACKING = (
    "INSERT INTO projection_tracking (view_name, position, generation, owner) "
    "VALUES (?, ?, ?, ?) ON CONFLICT (view_name) DO NOTHING"
)
SET_TRACKING = (
    "UPDATE projection_tracking SET position = ?, generation = ?, error = NULL, "
    "updated_at = strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now') WHERE view_name = ?"
)
RECORD_ERROR = (
    "INSERT INTO projection_tracking (view_name, owner, error) VALUES (?, ?, ?) "
    "ON CONFLICT (view_name) DO UPDATE SET error = excluded.error, owner = excluded.owner, "
    "updated_at = strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')"
)

QUERIES = load_sections("adapters.sqlite", "queries.sql")
BUSY_TIMEOUT_SECONDS = 30.0


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(
        path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
    )
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def _trackings(cursor: sqlite3.Cursor) -> list[Tracking]:
    """The cursor's tracking rows, by column name."""
    names = [column[0] for column in cursor.description]
    return [
        Tracking(
            view=r["view_name"], position=r["position"], generation=r["generation"],
            owner=r["owner"], error=r["error"], updated_at=ddl._time_in(r["updated_at"]),
        )
        for r in (dict(zip(names, row, strict=True)) for row in cursor.fetchall())
    ]


class SQLiteViewStore:
    """A :class:`projections.store.ViewStore` on the ledger's SQLite file."""

    backend = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = connect(path)
        self.lock_dir = path.parent / "locks"
        self._locks: dict[str, IO[bytes]] = {}
        self._data_version = -1

    @translated()
    def close(self) -> None:
        for name in list(self._locks):
            self.unlock(name)
        self.conn.close()

    # -- the log ------------------------------------------------------------------------

    @translated()
    def head(self) -> int:
        if self.conn.execute(EVENTS_EXIST).fetchone() is None:
            return 0
        row = self.conn.execute(HEAD).fetchone()
        return int(row[0]) if row else 0

    @translated()
    def read_events(self, after: int, limit: int, upto: int | None = None) -> list[RawRow]:
        if upto is None:
            cur = self.conn.execute(READ_EVENTS, (after, limit))
        else:
            cur = self.conn.execute(READ_EVENTS_UPTO, (after, upto, limit))
        return [
            (position, _canonical(originator), version, topic, state)
            for position, originator, version, topic, state in cur.fetchall()
        ]

    @translated()
    def stream_version_at(self, originator_id: UUID, position: int) -> int:
        if self.conn.execute(EVENTS_EXIST).fetchone() is None:
            return 0
        row = self.conn.execute(STREAM_VERSION_AT, (originator_id.hex, position)).fetchone()
        return int(row[0]) if row else 0

    @translated()
    def wait_for_events(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            version = self.conn.execute(DATA_VERSION).fetchone()[0]
            if version != self._data_version:
                self._data_version = version
                return
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.02))

    # -- locks --------------------------------------------------------------------------

    @translated()
    def try_lock(self, name: str) -> bool:
        if name in self._locks:
            return True
        self.lock_dir.mkdir(parents=True, exist_ok=True)
        handle = self._lock_path(name).open("a+b")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n".encode())
        handle.flush()
        self._locks[name] = handle
        return True

    @translated()
    def unlock(self, name: str) -> None:
        handle = self._locks.pop(name, None)
        if handle is not None:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()

    @translated()
    def is_locked(self, name: str) -> bool:
        if name in self._locks:
            return True
        path = self._lock_path(name)
        if not path.exists():
            return False
        with path.open("rb") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
        return False

    def _lock_path(self, name: str) -> Path:
        return self.lock_dir / f"{name.replace(':', '-')}.lock"

    # -- tracking ------------------------------------------------------------------------

    @translated()
    def tracking(self, view: str) -> Tracking:
        rows = _trackings(self.conn.execute(SELECT_TRACKING, (view,)))
        return rows[0] if rows else Tracking(view, 0, 0)

    @translated()
    def all_tracking(self) -> list[Tracking]:
        return _trackings(self.conn.execute(SELECT_ALL_TRACKING))

    @translated()
    def record_error(self, view: str, error: str | None, owner: str | None) -> None:
        with self.transaction():
            self.conn.execute(RECORD_ERROR, (view, owner, error))

    # -- writing ------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with translated():
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

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
    def lock_tracking(self, view: str) -> Tracking:
        # BEGIN IMMEDIATE already holds the database's write lock.
        self.conn.execute(INSERT_TRACKING, (view, 0, 0, None))
        return self.tracking(view)

    @translated()
    def set_tracking(self, view: str, position: int, generation: int) -> None:
        self.conn.execute(SET_TRACKING, (position, generation, view))

    @translated()
    def load(self, table: Table, suffix: str, keys: Collection[Key]) -> dict[Key, Row]:
        outs = ddl.key_writer(table)
        convert = ddl.reader(table)
        names = table.names
        if len(outs) == 1:
            (out,) = outs
            wanted: list[Any] = [out(k[0]) for k in keys]
        else:
            wanted = [[o(v) for o, v in zip(outs, k, strict=True)] for k in keys]
        cur = self.conn.execute(ddl.select_by_key(table, suffix), (json.dumps(wanted),))
        loaded = {}
        for raw in cur.fetchall():
            row = dict(zip(names, ddl.to_sqlite(raw, convert), strict=True))
            loaded[table.key_of(row)] = row
        return loaded

    @translated()
    def apply(self, view: View, suffix: str, state: PageState) -> None:
        try:
            self._apply(view, suffix, state)
        except (OverflowError, UnicodeEncodeError) as error:
            # sqlite3 refuses these values before SQLite sees them (an integer past 64
            # bits, a lone surrogate): the database refused the rows, as PostgreSQL says.
            raise StoreError(f"SQLite: {error}") from error

    def _apply(self, view: View, suffix: str, state: PageState) -> None:
        conn = self.conn
        for table in view.tables:
            name = table.name
            out = ddl.writer(table)
            if table.kind is Kind.STATE:
                deleted = state.deleted.get(name)
                if deleted:
                    keys = ddl.key_writer(table)
                    conn.executemany(
                        ddl.delete_key(table, suffix), [ddl.to_sqlite(k, keys) for k in deleted]
                    )
                dirty = state.dirty.get(name)
                if dirty:
                    rows = state.rows[name]
                    names = table.names
                    conn.executemany(ddl.upsert(table, suffix), [
                        ddl.to_sqlite(tuple(rows[k][c] for c in names), out)
                        for k in dirty if k in rows
                    ])
            elif table.kind is Kind.COUNTER:
                deltas = state.deltas.get(name)
                if deltas:
                    conn.executemany(ddl.add_counters(table, suffix), [
                        ddl.to_sqlite((*k, *v), out) for k, v in deltas.items()
                    ])
            else:
                appended = state.appended.get(name)
                if appended:
                    conn.executemany(
                        ddl.insert(table, suffix), [ddl.to_sqlite(r, out) for r in appended]
                    )

    # -- rebuild and verify ---------------------------------------------------------------

    @translated()
    def create_tables(self, view: View, suffix: str) -> None:
        with self.transaction():
            for table in view.tables:
                self.conn.execute(ddl.drop_table(table, suffix))
                self.conn.execute(ddl.create_table(table, suffix))

    @translated()
    def drop_tables(self, view: View, suffix: str) -> None:
        if self.conn.in_transaction:
            return
        with self.transaction():
            for table in view.tables:
                self.conn.execute(ddl.drop_table(table, suffix))

    @translated()
    def replace_tables(self, view: View, suffix: str) -> None:
        for table in view.tables:
            self.conn.execute(ddl.drop_table(table, ""))
            self.conn.execute(ddl.rename_table(table, suffix))
            for statement in ddl.create_indexes(table, ""):
                self.conn.execute(statement)

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        with translated():
            self.conn.execute("BEGIN")
            try:
                self.conn.execute(SNAPSHOT_START).fetchone()  # a read starts the snapshot
                yield
            finally:
                self.conn.execute("ROLLBACK")

    def rows(self, table: Table, suffix: str) -> Iterator[tuple[Any, ...]]:
        with translated():
            yield from self.conn.execute(ddl.select_ordered(table, suffix))

    @translated()
    def count(self, table: Table, suffix: str) -> int:
        row = self.conn.execute(ddl.count_rows(table, suffix)).fetchone()
        return int(row[0]) if row else 0

    @translated()
    def query(self, name: str, params: Mapping[str, Any]) -> list[QueryRow]:
        """Run the named read-side query of queries.sql (for projections/queries/)."""
        (statement,) = QUERIES[name]
        values = {key: _param(value) for key, value in params.items()}
        cur = self.conn.execute(statement, values)
        names = [column[0] for column in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _canonical(hex_id: str) -> str:
    """eventsourcing's 32-digit hex id as canonical UUID text."""
    if len(hex_id) == 32:
        return f"{hex_id[:8]}-{hex_id[8:12]}-{hex_id[12:16]}-{hex_id[16:20]}-{hex_id[20:]}"
    return str(UUID(hex_id))


def _param(value: Any) -> Any:
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return ddl.to_text_time(value)
    if isinstance(value, date):
        return value.isoformat()
    return value
