"""Each view declares its tables once; what is derived from that declaration agrees with it.

The DDL of both databases is composed from the declaration (checked here on SQLite's
catalog, and against the migrations in tests/integration/test_migrations.py); the read
side's row structs are checked against it when their module is imported (``RowShape``);
the projections' event structs are checked against the ledger's own event classes.
"""

from __future__ import annotations

import importlib
import pkgutil
import sqlite3
import typing
from datetime import datetime, timedelta
from typing import Any

import msgspec
import pytest
from eventsourcing.utils import resolve_topic

import projections.queries
from adapters.sqlite import ddl as sqlite_ddl
from ledger.commands import (
    AnyCommand,
    ClaimJob,
    CompleteJob,
    DetectStale,
    EnqueueJob,
    FailJob,
    RecordHeartbeat,
    RedriveJob,
)
from projections.events import BODIES, Stamp
from projections.job_status import JobStatusView
from projections.memory import MemoryView
from projections.model import Table
from projections.queries import RowShape, disagreements
from projections.queries.job_status import ROWS, status_of_job
from projections.registry import VIEWS
from tests.support.projection_events import T0, decoded, logged, memory_ledger

TABLES = [table for view in VIEWS.values() for table in view.tables]


def row_shapes() -> list[RowShape[Any]]:
    shapes: list[RowShape[Any]] = []
    for module in pkgutil.iter_modules(projections.queries.__path__):
        loaded = importlib.import_module(f"projections.queries.{module.name}")
        shapes.extend(v for v in vars(loaded).values() if isinstance(v, RowShape))
    return shapes


def test_every_row_struct_of_the_read_side_agrees_with_its_table() -> None:
    shapes = row_shapes()
    assert {s.table.name for s in shapes} == {
        "job_status", "queue_history", "dead_letter_alerts", "rate_limit_counters",
        "queue_controls", "schedules",
    }
    for shape in shapes:
        assert disagreements(shape.table, shape.struct, shape.json) == []


def test_a_struct_that_disagrees_with_its_table_is_refused_at_import() -> None:
    class Wrong(msgspec.Struct):
        job_id: str  # a uuid column
        customer_id: str

    table = VIEWS["queue_history"].table("queue_history_jobs")
    with pytest.raises(TypeError, match="queue_history_jobs"):
        RowShape(table, Wrong)


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.name)
def test_the_sqlite_ddl_creates_the_table_as_declared(table: Table) -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute(sqlite_ddl.create_table(table, ""))
    for statement in sqlite_ddl.create_indexes(table, ""):
        conn.execute(statement)
    info = {row[1]: row for row in conn.execute(f'PRAGMA table_info("{table.name}")')}
    assert list(info) == list(table.names)
    for column in table.columns:
        _, _, kind, not_null, default, pk = info[column.name]
        assert kind == sqlite_ddl.SQLITE_TYPES[column.type].as_string(None)
        assert bool(not_null) == (not column.nullable)
        assert default == ("0" if table.starts_at_zero(column) else None)
        assert pk == (table.key.index(column.name) + 1 if column.name in table.key else 0)
    for index in table.indexes:
        name = f"{table.name}_{index.name}"
        columns = tuple(r[2] for r in conn.execute(f'PRAGMA index_info("{name}")'))
        assert columns == index.columns
        (sql,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (name,)).fetchone()
        assert ("WHERE" in sql) == (index.where is not None)
    conn.close()


def _model_type(stored: Any) -> Any:
    """The projection struct's type as the ledger's event class would spell it."""
    if stored is Stamp:
        return datetime
    if stored == Stamp | None:
        return datetime | None
    return stored


@pytest.mark.parametrize("topic", sorted(BODIES))
def test_each_event_struct_is_a_subset_of_the_ledger_event_with_the_same_types(
    topic: str,
) -> None:
    model = typing.get_type_hints(resolve_topic(topic))
    for field in msgspec.structs.fields(BODIES[topic]):
        assert field.encode_name in model, f"{field.encode_name} is not a field of {topic}"
        wanted = model[field.encode_name]
        assert _model_type(field.type) == wanted, field.encode_name
        if field.default is not msgspec.NODEFAULT:  # for events stored before the field
            if field.default is None:
                assert type(None) in typing.get_args(wanted), field.encode_name
            else:
                assert isinstance(field.default, wanted), field.encode_name


HISTORIES = [
    [],
    ["claim", "heartbeat", "complete"],
    ["claim", "fail", "claim", "heartbeat", "fail"],
    ["claim", "stale", "claim", "fail", "redrive", "claim", "complete"],
]


@pytest.mark.parametrize("history", HISTORIES, ids=lambda h: "-".join(h) or "enqueued")
def test_a_job_aggregate_in_the_view_shape_equals_its_job_status_row(history: list[str]) -> None:
    ledger = memory_ledger()
    now = T0
    job_id = ledger.execute(EnqueueJob(customer_id="c", queue="q", max_attempts=2), now).job_id
    for action in history:
        now += timedelta(seconds=700)
        job = ledger.get_job(job_id)
        attempt, worker = max(job.attempt, 1), job.worker_id or "w"
        commands: dict[str, AnyCommand] = {
            "claim": ClaimJob(job_id=job_id, worker_id="w"),
            "heartbeat": RecordHeartbeat(job_id=job_id, attempt=attempt, worker_id=worker),
            "complete": CompleteJob(job_id=job_id, attempt=attempt, worker_id=worker),
            "fail": FailJob(job_id=job_id, attempt=attempt, worker_id=worker, error="boom"),
            "stale": DetectStale(job_id=job_id, attempt=attempt, detected_by="monitor"),
            "redrive": RedriveJob(job_id=job_id, actor="operator"),
        }
        ledger.execute(commands[action], now)
    view = MemoryView(JobStatusView())
    view.feed(decoded(logged(ledger)))
    (row,) = view.dicts("job_status")
    assert ROWS.decode(row) == status_of_job(ledger.get_job(job_id))
