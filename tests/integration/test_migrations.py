"""Migrating from empty gives the current schema, on SQLite and PostgreSQL: the tables of
schema.sql plus every view's tables as its declaration derives them (columns, types,
nullability, defaults, keys, indexes)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any
from uuid import uuid4

import psycopg
import pytest

from adapters.postgres import ddl as pg_ddl
from adapters.postgres.migrate import migrate as migrate_postgres
from adapters.postgres.migrate import migrations as postgres_migrations
from adapters.service.bootstrap import build
from adapters.service.settings import Settings
from adapters.sqlite import ddl as sqlite_ddl
from adapters.sqlite.migrate import migrate as migrate_sqlite
from adapters.sqlite.migrate import migrations as sqlite_migrations
from projections.registry import VIEWS
from tests.support.pg import PostgresServer

NOT_OURS = ("schema_migrations", "jobledger_events", "jobledger_snapshots", "stored_events",
            "stored_snapshots")

PG_COLUMNS = """
SELECT table_name, column_name, ordinal_position, data_type, is_nullable, column_default
FROM information_schema.columns WHERE table_schema = 'public' AND NOT table_name = ANY(%s)
ORDER BY table_name, ordinal_position
"""
PG_INDEXES = """
SELECT tablename, indexname, indexdef FROM pg_indexes
WHERE schemaname = 'public' AND NOT tablename = ANY(%s) ORDER BY indexname
"""
PG_CONSTRAINTS = """
SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)
FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
WHERE n.nspname = 'public' AND NOT c.conrelid::regclass::text = ANY(%s) ORDER BY c.conname
"""

PG_TABLES = """
SELECT c.relname, c.relpersistence, c.reloptions FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind = 'r' AND NOT c.relname = ANY(%s) ORDER BY c.relname
"""


def describe_postgres(url: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(url) as conn:
        return {
            name: conn.execute(query, (list(NOT_OURS),)).fetchall()
            for name, query in (
                ("tables", PG_TABLES), ("columns", PG_COLUMNS), ("indexes", PG_INDEXES),
                ("constraints", PG_CONSTRAINTS),
            )
        }


def _normal(text: str | None) -> str:
    return " ".join((text or "").replace('"', "").split())


def describe_sqlite(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    conn = sqlite3.connect(path)
    try:
        tables = [
            (name, _normal(sql)) for (name, sql) in conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )
            if name not in NOT_OURS and not name.startswith("sqlite_")
        ]
        names = [name for name, _ in tables]
        columns = [(t, *row) for t in names for row in conn.execute(f"PRAGMA table_info({t})")]
        indexes = sorted(
            (table, name, _normal(sql))
            for table, name, sql in conn.execute(
                "SELECT tbl_name, name, sql FROM sqlite_master WHERE type = 'index'"
            )
            if table in names
        )
        return {"tables": tables, "columns": columns, "indexes": indexes}
    finally:
        conn.close()


def test_sqlite_migrated_from_empty_equals_the_current_schema(tmp_path: Path) -> None:
    migrated, current = tmp_path / "migrated.sqlite3", tmp_path / "current.sqlite3"
    applied = migrate_sqlite(migrated)
    assert [m.version for m in applied] == [m.version for m in sqlite_migrations()]
    conn = sqlite3.connect(current)
    for statement in sqlite_ddl.current_schema():
        conn.execute(statement)
    conn.commit()
    conn.close()
    described = describe_sqlite(migrated)
    assert described["tables"]
    assert described == describe_sqlite(current)
    assert migrate_sqlite(migrated) == []  # forward-only and idempotent


def test_each_view_table_is_migrated_as_its_view_declares(tmp_path: Path) -> None:
    migrated, declared = tmp_path / "migrated.sqlite3", tmp_path / "declared.sqlite3"
    migrate_sqlite(migrated)
    conn = sqlite3.connect(declared)
    for view in VIEWS.values():
        for table in view.tables:
            conn.execute(sqlite_ddl.create_table(table, ""))
            for statement in sqlite_ddl.create_indexes(table, ""):
                conn.execute(statement)
    conn.commit()
    conn.close()
    have, want = describe_sqlite(migrated), describe_sqlite(declared)
    for view in VIEWS.values():
        for table in view.tables:
            create = [sqlite_ddl.create_table(table, ""), *sqlite_ddl.create_indexes(table, "")]
            for part in ("tables", "columns", "indexes"):
                assert [r for r in have[part] if r[0] == table.name] == [
                    r for r in want[part] if r[0] == table.name
                ], f"a migration must create {table.name} as declared: {';'.join(create)}"


@pytest.mark.postgres
def test_postgres_migrated_from_empty_equals_the_current_schema(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    applied = migrate_postgres(postgres_url)
    assert [m.version for m in applied] == [m.version for m in postgres_migrations()]
    current_name = f"current_{uuid4().hex[:12]}"
    current = postgres_server.create_database(current_name)
    try:
        with psycopg.connect(current) as conn:
            for statement in pg_ddl.current_schema():
                conn.execute(statement)
        described = describe_postgres(postgres_url)
        assert described["columns"]
        assert described == describe_postgres(current)
    finally:
        postgres_server.drop_database(current_name)
    assert migrate_postgres(postgres_url) == []


def test_migrations_are_numbered_the_same_on_both_databases() -> None:
    assert [(m.version, m.name) for m in sqlite_migrations()] == [
        (m.version, m.name) for m in postgres_migrations()
    ]


def test_starting_the_ledger_migrates(tmp_path: Path) -> None:
    container = build(Settings(ledger_data_dir=tmp_path / "data"))
    container.close()
    conn = sqlite3.connect(tmp_path / "data" / "ledger.sqlite3")
    try:
        versions = [v for (v,) in conn.execute("SELECT version FROM schema_migrations")]
    finally:
        conn.close()
    assert versions == [m.version for m in sqlite_migrations()]
