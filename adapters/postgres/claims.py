"""Claims and reports in one transaction with the local queue's rows (ADR 155).

:meth:`PostgresClaims.claim` takes up to N visible messages of the local queue (priority
order, each under a transaction-level advisory lock tried in order, so concurrent claims
skip each other's rows as ``SKIP LOCKED`` would), decides their jobs' claims with the
ledger (:meth:`JobLedger.execute_batch`: the ``Queue`` aggregate still refuses a paused
queue's or a full one's, and a batch's claims take their slots in one ``SlotsTaken``),
appends the ``Claimed`` events, then receives the claimed messages and settles each
refused one (deleted when obsolete, visible again later otherwise, never counted) in ONE
transaction on the ledger's database. A server killed before the commit leaves every
message visible as it was and no ``Claimed``; after it, the jobs are running with a
heartbeat deadline and the stale policy recovers an abandoned one.

:meth:`PostgresClaims.report` appends a batch of reports (complete, fail, cancelled) and
deletes the messages of the ones the ledger answered in the same transaction.

Both run on the thread of the ledger's batch writer (the one thread that decides and
appends for this process: :meth:`BatchWriter.call`), so they are never decided
concurrently with another batch of this process. The appends join the transaction
through :meth:`LedgerEventRecorder.joined`. Nothing is written before the append (the
advisory locks take no transaction id), so the append orders itself in ADR 150's section
instead of taking the events table's EXCLUSIVE lock until the commit (rule 2), and other
processes' appends do not wait for this transaction.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import StoredEvent
from psycopg import sql

from adapters.local_queue.claims import (
    ClaimedMessage,
    ClaimRequest,
    ReportBatch,
    fate_of_refusal,
)
from adapters.postgres.append_cursor import kept_cursor, rendered
from adapters.postgres.errors import translated
from adapters.postgres.event_recorder import LedgerEventRecorder
from adapters.postgres.session_jit import jit_off
from adapters.sql.queue_rows import QueueRow
from adapters.sql.sqlfile import load_sections
from ledger.application import JobLedger, Result
from ledger.commands import AnyCommand, ClaimJob, Outcome
from ledger.errors import (
    AttemptSuperseded,
    IllegalTransition,
    LedgerError,
    MalformedMessage,
    UnknownAttempt,
)
from ledger.ports.queue_store import StoredMessage
from ledger.ports.transport import JobMessage, decode_message

SQL = {name: statements[0] for name, statements in load_sections(
    "adapters.postgres", "claims.sql"
).items()}

ROW_COLUMNS = len(QueueRow._fields)
"""The candidates' columns that make a queue row; the queues' versions (2) and the job's
stream (6) follow."""
ANSWERED_REFUSALS = (AttemptSuperseded, UnknownAttempt, IllegalTransition)
"""Refused reports whose message goes too: the attempt is over for this worker (the
reports' 409s, which the worker settles by deleting the message)."""
ADVISORY_LOCK = 0x6C715F63
"""The first key of the advisory locks a claim holds on its messages until it commits
(the second is the message's ``seq``), so concurrent claims skip each other's rows."""
NOTIFY_WITHIN = 0.025
"""How late the log's ``NOTIFY`` may follow a claims' transaction (ADR 203): the log's
listeners (the projection runner, the dispatcher) wait as long after a small page anyway
(ADRs 190, 204), so one ``NOTIFY`` per that while serves a worker's batches."""


class PostgresClaims:
    """Claims of several messages, and reports that delete theirs, in one transaction."""

    def __init__(self, ledger: JobLedger, recorder: LedgerEventRecorder) -> None:
        self.ledger = ledger
        self.recorder = recorder
        schema = recorder.datastore.schema
        snapshots = getattr(getattr(ledger.snapshots, "recorder", None), "events_table_name", "")
        assert isinstance(snapshots, str), "the ledger snapshots its jobs"
        self._candidates_statement = sql.SQL(SQL["candidates"]).format(
            events=sql.Identifier(schema, recorder.events_table_name),
            snapshots=sql.Identifier(schema, snapshots),
        )

    def claim(self, request: ClaimRequest, now: datetime, epoch: float) -> list[ClaimedMessage]:
        """Claim up to ``request.limit`` jobs (``now``: the ledger's clock; ``epoch``: the
        queue's, in seconds)."""
        return self.run([], [request], now, epoch)[1][0]

    def report(
        self, commands: Sequence[AnyCommand], receipts: Sequence[tuple[int, str] | None],
        queue_name: str, now: datetime,
    ) -> list[Result]:
        """Execute the reports; delete the message (``(seq, token)``) of each the ledger
        answered (recorded, or refused as :data:`ANSWERED_REFUSALS`), in the same
        transaction."""
        batch = ReportBatch(list(commands), list(receipts), queue_name)
        return self.run([batch], [], now, 0.0)[0][0]

    def run(
        self, reports: Sequence[ReportBatch], claims: Sequence[ClaimRequest], now: datetime,
        epoch: float,
    ) -> tuple[list[list[Result]], list[list[ClaimedMessage]]]:
        """Several callers' reports and claims in ONE transaction and one append: the
        claims' messages received, then every report and claim decided in one batch (the
        reports first, so a slot they free serves a claim), the reported messages deleted
        and the refused claims' settled. Each caller's results, in order."""
        touched: list[UUID] = [c.job_id for b in reports for c in b.commands]
        try:
            with self._transaction() as conn:
                taken: set[int] = set()
                queues = self.ledger.queue_cache
                versions: dict[UUID, int | None] = {}  # the queues', with the candidates
                streams: dict[UUID, list[StoredEvent]] = {}  # the jobs', likewise (ADR 208)
                candidates = [self._candidates(conn, request, epoch, taken,
                                              versions=versions, streams=streams)
                              for request in claims]  # fmt: skip
                received = [_decoded(due) for due, _ in candidates]
                claim_commands = [
                    ClaimJob(job_id=message.job_id, worker_id=request.worker_id)
                    for request, rows in zip(claims, received, strict=True)
                    for _, message in rows
                ]
                touched += [c.job_id for c in claim_commands]
                commands = [c for b in reports for c in b.commands] + claim_commands
                with self.recorder.joined(conn), queues.versions_read(versions), \
                        self.ledger.job_cache.streams_read(streams):
                    results = iter(self.ledger.execute_batch(commands, now))
                reported = [[next(results) for _ in b.commands] for b in reports]
                self._delete_reported(conn, reports, reported)
                decided = [[(row, next(results)) for row in rows] for rows in received]
                claimed = self._settle_claims(conn, claims, decided, now, epoch)
                for request, (_, over) in zip(claims, candidates, strict=True):
                    self._receive(conn, request, [row.seq for row in over], epoch)
        except BaseException:
            for job_id in touched:  # the cache may hold decisions that never committed
                self.ledger.forget(job_id)
            raise
        if touched:  # a batch that decided nothing appended nothing: no one to wake
            self._notify()
        return reported, claimed

    def _candidates(
        self, conn: psycopg.Connection[Any], request: ClaimRequest, epoch: float,
        taken: set[int], *, versions: dict[UUID, int | None],
        streams: dict[UUID, list[StoredEvent]],
    ) -> tuple[list[StoredMessage], list[StoredMessage]]:
        """The messages this claim takes (advisory-locked, nothing written yet), and
        those received too often already, to move to the dead-letter queue. ``taken``: the
        rows an earlier claim of this transaction took (added to). Its advisory locks are
        this session's, which the same session takes again, so its rows would come back
        here too: each claim's ledger decision then refused as not pending, and its message
        deleted as obsolete under the job the earlier claim had just started.
        ``versions``: the stored versions of the queues the ledger watches, read by the
        same statement (updated; ADR 202); ``streams``: the taken rows' jobs' snapshots and
        events, likewise (ADR 208)."""
        more = len(taken)
        names, ids = self.ledger.queue_cache.watched()
        params: dict[str, Any] = {
            "queue": request.queue_name, "now": epoch, "any_queue": request.queues is None,
            "job_queues": list(request.queues or ()), "customer": request.customer_id,
            "window": request.limit * 4 + 16 + more, "limit": request.limit + more,
            "lock": ADVISORY_LOCK, "queue_names": names, "queue_ids": ids,
        }
        statement = rendered(self._candidates_statement, conn)  # its cursor kept: ADR 192
        fetched = kept_cursor(conn, statement).execute(statement, params).fetchall()
        found = [QueueRow(*row[:ROW_COLUMNS]).message() for row in fetched]
        if fetched:
            ids, queue_versions = fetched[0][ROW_COLUMNS:ROW_COLUMNS + 2]
            versions.update(zip(ids, queue_versions, strict=True))
        for row in fetched:
            job_id = UUID(row[2])
            streams[job_id] = _stream(job_id, row[ROW_COLUMNS + 2:])
        rows = [row for row in found if row.seq not in taken][:request.limit]
        taken.update(row.seq for row in rows)
        due = [row for row in rows if row.receive_count < request.max_receives]
        return due, [row for row in rows if row.receive_count >= request.max_receives]

    def _receive(
        self, conn: psycopg.Connection[Any], request: ClaimRequest, seqs: list[int],
        epoch: float,
    ) -> dict[int, tuple[str, int]]:
        """Receive the messages ``seqs`` (after the append); each one's new receipt and
        receive count (a row taken meanwhile by a receive without the lock is absent)."""
        if not seqs:
            return {}
        params: dict[str, Any] = {
            "queue": request.queue_name, "now": epoch, "seqs": seqs,
            "visible_until": epoch + request.visibility, "max_receives": request.max_receives,
        }
        receive = SQL["receive"]  # a cursor kept for it: its dumpers chosen once (ADR 192)
        rows = kept_cursor(conn, receive).execute(receive, params).fetchall()
        return {row[0]: (f"{row[0]}:{row[1]}", row[2]) for row in rows if row[3] is None}

    def _delete_reported(
        self, conn: psycopg.Connection[Any], reports: Sequence[ReportBatch],
        results: list[list[Result]],
    ) -> None:
        for batch, answers in zip(reports, results, strict=True):
            done = [
                receipt for receipt, result in zip(batch.receipts, answers, strict=True)
                if receipt is not None
                and (not isinstance(result, LedgerError) or isinstance(result, ANSWERED_REFUSALS))
            ]
            if done:
                kept_cursor(conn, SQL["delete"]).execute(SQL["delete"], {  # ADR 192
                    "queue": batch.queue_name, "seqs": [seq for seq, _ in done],
                    "receipts": [token for _, token in done],
                })

    def _settle_claims(
        self, conn: psycopg.Connection[Any], requests: Sequence[ClaimRequest],
        decided: list[list[tuple[tuple[StoredMessage, JobMessage], Result]]], now: datetime,
        epoch: float,
    ) -> list[list[ClaimedMessage]]:
        claimed: list[list[ClaimedMessage]] = []
        for request, pairs in zip(requests, decided, strict=True):
            obsolete: list[StoredMessage] = []
            later: list[tuple[int, float]] = []
            taken: list[tuple[StoredMessage, JobMessage, Outcome]] = []
            for (row, message), result in pairs:
                if not isinstance(result, LedgerError):
                    taken.append((row, message, result))
                elif (delay := fate_of_refusal(result, now)) is None:
                    obsolete.append(row)
                else:
                    later.append((row.seq, epoch + delay))
            _settle_refused(conn, request.queue_name, obsolete, later)
            receipts = self._receive(conn, request, [row.seq for row, _, _ in taken], epoch)
            claimed.append([self._claimed(row, message, result, receipts.get(row.seq))
                            for row, message, result in taken])  # fmt: skip
        return claimed

    def _claimed(
        self, row: StoredMessage, message: JobMessage, result: Outcome,
        receipt: tuple[str, int] | None,
    ) -> ClaimedMessage:
        held, payload = self.ledger.held_payload(message.job_id)
        token, count = receipt or (f"{row.seq}:taken", row.receive_count)
        return ClaimedMessage(
            job_id=str(message.job_id), attempt=result.attempt,
            customer_id=message.customer_id, queue=message.queue, seq=row.seq,
            receipt=token, message_id=row.message_id, body=row.body,
            message_attempt=row.attempt, receive_count=count,
            sent_at=row.sent_at, traceparent=result.traceparent,
            payload=payload if held else self.ledger.payload_of(message.job_id),
            message=message,  # decoded once (ADR 209)
        )

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Connection[Any]]:
        with translated(), self.recorder.datastore.pool.connection() as conn:
            jit_off(conn)  # once per session, before BEGIN: the streams' lookups (ADR 191)
            with conn.transaction():
                yield conn

    def _notify(self) -> None:
        """Wake the log's listeners once the appends committed, off this thread (the
        recorder's notifier, as its own appends do), within :data:`NOTIFY_WITHIN`."""
        self.recorder.notifier.poke(NOTIFY_WITHIN)


def _settle_refused(
    conn: psycopg.Connection[Any], queue_name: str, obsolete: list[StoredMessage],
    later: list[tuple[int, float]],
) -> None:
    """Delete the obsolete messages, hand the others back uncounted after their delay."""
    if obsolete:
        conn.execute(SQL["delete_obsolete"], {
            "queue": queue_name, "seqs": [row.seq for row in obsolete],
        })
    if later:
        conn.execute(SQL["hand_back"], {
            "queue": queue_name, "seqs": [seq for seq, _ in later],
            "visible_at": [at for _, at in later],
        })


def _stream(job_id: UUID, columns: Sequence[Any]) -> list[StoredEvent]:
    """A candidate's job's latest snapshot (if any) and events after it, as stored: what
    ``select_streams`` returns for it (empty for a job with none)."""
    version, topic, state, versions, topics, states = columns
    rows = [] if version is None else [(version, topic, state)]
    rows += zip(versions or (), topics or (), states or (), strict=True)
    return [StoredEvent(originator_id=job_id, originator_version=v, topic=t, state=bytes(b))
            for v, t, b in rows]  # fmt: skip


def _decoded(rows: Sequence[StoredMessage]) -> list[tuple[StoredMessage, JobMessage]]:
    """The rows with their messages; a malformed one stays received (invisible) and is
    dead-lettered once received too often, as the local queue does."""
    decoded: list[tuple[StoredMessage, JobMessage]] = []
    for row in rows:
        try:
            message = decode_message(row.body)
        except MalformedMessage:
            continue
        decoded.append((row, message))
    return decoded
