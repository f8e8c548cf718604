"""View checkpoints in PostgreSQL (see :class:`projections.checkpoints.CheckpointStore`).

Each chunk commits on its own (autocommit); the checkpoint's row is inserted last.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from psycopg.rows import dict_row

from adapters.postgres.errors import translated
from adapters.postgres.store import connect
from adapters.sql.sqlfile import load_sections
from projections.checkpoints import Checkpoint, checkpoint_of, checkpoint_params

SQL = {name: statements[0] for name, statements in load_sections(
    "adapters.postgres", "checkpoints.sql"
).items()}


class PostgresCheckpoints:
    """Checkpoints in the PostgreSQL database at ``url`` (one session, one thread)."""

    def __init__(self, url: str) -> None:
        with translated():
            self.conn = connect(url)

    @translated()
    def write_chunk(self, checkpoint_id: str, seq: int, data: bytes) -> None:
        self.conn.execute(SQL["write_chunk"], {"id": checkpoint_id, "seq": seq, "data": data})

    @translated()
    def publish(self, checkpoint: Checkpoint) -> None:
        self.conn.execute(SQL["publish"], checkpoint_params(checkpoint))

    @translated()
    def list(self, view: str) -> list[Checkpoint]:
        with self.conn.cursor(row_factory=dict_row) as cur:
            rows: list[dict[str, Any]] = cur.execute(SQL["list"], {"view": view}).fetchall()
        return [checkpoint_of(r, r["taken_at"]) for r in rows]

    def chunks(self, checkpoint_id: str) -> Iterator[bytes]:
        with translated(), self.conn.cursor() as cur:
            for (data,) in cur.stream(SQL["chunks"], {"id": checkpoint_id}):
                yield bytes(data)

    @translated()
    def delete(self, checkpoint_id: str) -> None:
        with self.conn.transaction():
            self.conn.execute(SQL["delete"], {"id": checkpoint_id})
            self.conn.execute(SQL["delete_chunks"], {"id": checkpoint_id})

    @translated()
    def delete_orphans(self) -> int:
        return self.conn.execute(SQL["delete_orphans"]).rowcount

    @translated()
    def close(self) -> None:
        self.conn.close()
