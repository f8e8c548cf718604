"""Forward-only, numbered migrations of job-ledger's own tables on PostgreSQL.

Concurrent starts are serialised by a transaction-level advisory lock; each pending
migration is applied in the same transaction as its row in ``schema_migrations``.
"""

from __future__ import annotations

from adapters.postgres.store import connect, lock_key
from adapters.sql.sqlfile import Migration, load_migrations

CREATE_MIGRATIONS = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    "version integer PRIMARY KEY, name text NOT NULL, "
    "applied_at timestamptz NOT NULL DEFAULT now())"
)
LOCK = "SELECT pg_advisory_xact_lock(%s)"
APPLIED = "SELECT version FROM schema_migrations ORDER BY version"
RECORD = "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)"


def migrations() -> list[Migration]:
    return load_migrations("adapters.postgres.migrations")


def migrate(url: str) -> list[Migration]:
    """Apply the migrations the database lacks; return those applied."""
    applied: list[Migration] = []
    with connect(url) as conn, conn.transaction():
        conn.execute(LOCK, (lock_key("migrations"),))
        conn.execute(CREATE_MIGRATIONS)
        done = {row[0] for row in conn.execute(APPLIED).fetchall()}
        for migration in migrations():
            if migration.version in done:
                continue
            for statement in migration.statements:
                conn.execute(statement)
            conn.execute(RECORD, (migration.version, migration.name))
            applied.append(migration)
    return applied


def applied_versions(url: str) -> list[int]:
    with connect(url) as conn:
        conn.execute(CREATE_MIGRATIONS)
        return [row[0] for row in conn.execute(APPLIED).fetchall()]
