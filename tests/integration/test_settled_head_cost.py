"""The settled head (ADR 150) costs a few index entries, not a walk of the log.

``{events}_head()`` runs on every read of the log (the projection runner's pages, the
dispatcher's, ``/health``'s lag). Its lookup of the rows at or above the oldest running
transaction once let the planner take the min/max shortcut: walk the notification id
index from the start, filtering on the transaction id, which reads every row of the log
when none passes (issue 19's end-to-end regression: a third of PostgreSQL's time per
job). The counts are the reading transaction's own statistics, so nothing here is timed.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import sql

from adapters.postgres.backend import EVENTS_TABLE
from tests.integration.test_log_order import append_in, open_ledger

pytestmark = pytest.mark.postgres

HEAD = sql.SQL("SELECT {f}()").format(f=sql.Identifier(f"{EVENTS_TABLE}_head"))
TUPLES_READ = sql.SQL(
    "SELECT coalesce(sum(pg_stat_get_xact_tuples_returned(c.oid)), 0) "
    "FROM pg_class c WHERE c.oid = {t}::regclass "
    "OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = {t}::regclass)"
).format(t=sql.Literal(EVENTS_TABLE))
"""Rows and index entries the current transaction read from the events table (its
pending statistics: sequential scans of the table and every index's scans)."""
LOG_SIZE = 5000


def head_and_reads(conn: psycopg.Connection[Any]) -> tuple[int, int]:
    """The settled head, and what reading it read from the table, in a new transaction."""
    with conn.transaction():
        before = conn.execute(TUPLES_READ).fetchall()
        head = conn.execute(HEAD).fetchall()
        after = conn.execute(TUPLES_READ).fetchall()
    return int(head[0][0]), int(after[0][0]) - int(before[0][0])


def test_the_settled_head_reads_a_few_entries_however_long_the_log(postgres_url: str) -> None:
    """5,000 committed events and none in flight: the head is the last id, found by
    reading a handful of index entries (it read all 5,000 before), statistics or not."""
    open_ledger(postgres_url).close()
    with psycopg.connect(postgres_url) as writer, writer.transaction():
        ids = append_in(writer, LOG_SIZE)
    with psycopg.connect(postgres_url) as reader:
        head, read = head_and_reads(reader)
        assert head == max(ids)
        assert read <= 10, f"the settled head read {read} entries of a {LOG_SIZE}-event log"
        reader.execute(sql.SQL("ANALYZE {t}").format(t=sql.Identifier(EVENTS_TABLE)))
        reader.commit()
        head, read = head_and_reads(reader)
        assert (head, read <= 10) == (max(ids), True)


def test_with_a_transaction_in_flight_the_head_stops_before_it_cheaply(
    postgres_url: str,
) -> None:
    """An append left open holds the head just before its id; reading that head still reads
    only the rows at or above the oldest running transaction, not the log before them."""
    open_ledger(postgres_url).close()
    with psycopg.connect(postgres_url) as writer, writer.transaction():
        ids = append_in(writer, LOG_SIZE)
    with psycopg.connect(postgres_url) as open_tx, psycopg.connect(postgres_url) as late, \
            psycopg.connect(postgres_url) as reader:
        append_in(open_tx, 1)  # holds the horizon
        with late.transaction():
            after = append_in(late, 3)  # committed, above the horizon
        head, read = head_and_reads(reader)
        assert head == max(ids)
        assert read <= 20, f"the settled head read {read} entries of a {LOG_SIZE}-event log"
        open_tx.commit()
        head, _ = head_and_reads(reader)
        assert head == max(after)
