"""Forward-only, numbered migrations of job-ledger's own tables on SQLite.

``BEGIN IMMEDIATE`` serialises concurrent starts; SQLite's DDL is transactional, so the
pending migrations and their rows in ``schema_migrations`` commit together.
"""

from __future__ import annotations

from pathlib import Path

from adapters.sql.sqlfile import Migration, load_migrations
from adapters.sqlite.store import connect
from projections.job_errors import error_id

CREATE_MIGRATIONS = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    "version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
    "applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')))"
)
APPLIED = "SELECT version FROM schema_migrations ORDER BY version"
RECORD = "INSERT INTO schema_migrations (version, name) VALUES (?, ?)"


def migrations() -> list[Migration]:
    return load_migrations("adapters.sqlite.migrations")


def migrate(path: Path) -> list[Migration]:
    """Apply the migrations the database lacks; return those applied."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = connect(path)
    conn.create_function("ledger_error_id", 1, error_id, deterministic=True)  # 0066
    applied: list[Migration] = []
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(CREATE_MIGRATIONS)
            done = {row[0] for row in conn.execute(APPLIED).fetchall()}
            for migration in migrations():
                if migration.version in done:
                    continue
                for statement in migration.statements:
                    conn.execute(statement)
                conn.execute(RECORD, (migration.version, migration.name))
                applied.append(migration)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    finally:
        conn.close()
    return applied
