"""View checkpoints in the SQLite file (see :class:`projections.checkpoints.CheckpointStore`).

Each chunk commits on its own (short write transactions: appends are not held up while a
large view is copied); the checkpoint's row is inserted last.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from adapters.sql.sqlfile import load_sections
from adapters.sqlite.errors import translated
from adapters.sqlite.store import connect
from projections.checkpoints import Checkpoint, checkpoint_of, checkpoint_params

SQL = {name: statements[0] for name, statements in load_sections(
    "adapters.sqlite", "checkpoints.sql"
).items()}


class SqliteCheckpoints:
    """Checkpoints in the SQLite file at ``path`` (one connection, one thread)."""

    def __init__(self, path: Path) -> None:
        with translated():
            self.conn = connect(path)
            self.conn.row_factory = sqlite3.Row

    @translated()
    def write_chunk(self, checkpoint_id: str, seq: int, data: bytes) -> None:
        self.conn.execute(SQL["write_chunk"], {"id": checkpoint_id, "seq": seq, "data": data})

    @translated()
    def publish(self, checkpoint: Checkpoint) -> None:
        params = checkpoint_params(checkpoint) | {"taken_at": checkpoint.taken_at.isoformat()}
        self.conn.execute(SQL["publish"], params)

    @translated()
    def list(self, view: str) -> list[Checkpoint]:
        return [
            checkpoint_of(r, datetime.fromisoformat(r["taken_at"]))
            for r in self.conn.execute(SQL["list"], {"view": view}).fetchall()
        ]

    def chunks(self, checkpoint_id: str) -> Iterator[bytes]:
        with translated():
            for row in self.conn.execute(SQL["chunks"], {"id": checkpoint_id}):
                yield bytes(row["data"])

    @translated()
    def delete(self, checkpoint_id: str) -> None:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            self.conn.execute(SQL["delete"], {"id": checkpoint_id})
            self.conn.execute(SQL["delete_chunks"], {"id": checkpoint_id})
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    @translated()
    def delete_orphans(self) -> int:
        return self.conn.execute(SQL["delete_orphans"]).rowcount

    @translated()
    def close(self) -> None:
        self.conn.close()
