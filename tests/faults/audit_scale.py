"""``ledger audit`` at scale: ``python -m tests.faults.audit_scale [JOBS]``.

Writes JOBS job lives to a fresh PostgreSQL database (the test server: ``DATABASE_URL``,
testcontainers or the local binaries): enqueue, claim, heartbeat, complete, and for one
job in 20 a failure into a dead letter with its alert recorded; catches the views up,
then times the audit with every view verified and with the log and ``job_status`` only.
"""

from __future__ import annotations

import sys
import time
from datetime import timedelta
from uuid import uuid4

from adapters.service.audit import run_audit
from adapters.service.backend import backend_for
from adapters.service.bootstrap import build, utc_now
from adapters.service.settings import Settings
from ledger.commands import (
    AnyCommand,
    ClaimJob,
    CompleteJob,
    EnqueueJob,
    FailJob,
    Outcome,
    RecordAlert,
    RecordHeartbeat,
)
from projections.registry import VIEWS
from projections.runner import Runner
from projections.store import ViewStore
from tests.support.pg import start_postgres

BATCH = 500


def main(jobs: int) -> None:
    with start_postgres() as server:
        url = server.create_database(f"audit_scale_{uuid4().hex[:8]}")
        settings = Settings.from_env({"DATABASE_URL": url})
        container = build(settings)
        ledger = container.ledger
        started = time.monotonic()
        for first in range(0, jobs, BATCH):
            size = min(BATCH, jobs - first)
            poison = [i % 20 == 0 for i in range(size)]
            enqueued = ledger.execute_batch([
                EnqueueJob(customer_id=f"c{i % 7}", payload={"i": i},
                           max_attempts=1 if poison[i] else 3)
                for i in range(size)
            ], utc_now())
            ids = [o.job_id for o in enqueued if isinstance(o, Outcome)]
            ledger.execute_batch([ClaimJob(job_id=j, worker_id="w1") for j in ids], utc_now())
            ledger.execute_batch(
                [RecordHeartbeat(job_id=j, attempt=1, worker_id="w1") for j in ids], utc_now()
            )
            ends: list[AnyCommand] = [
                FailJob(job_id=j, attempt=1, worker_id="w1", error="boom") if poison[i]
                else CompleteJob(job_id=j, attempt=1, worker_id="w1")
                for i, j in enumerate(ids)
            ]
            results = ledger.execute_batch(ends, utc_now())
            ledger.execute_batch([
                RecordAlert(job_id=r.job_id, dead_letter_version=r.version, channel="log",
                            delivery_id="d")
                for r in results if isinstance(r, Outcome) and r.status == "dead_lettered"
            ], utc_now())
        print(f"wrote {jobs} jobs in {time.monotonic() - started:.1f}s", flush=True)

        def session() -> ViewStore:
            return backend_for(settings).open_views()

        store = session()
        runner = Runner(store, list(VIEWS.values()))
        runner.acquire()
        runner.catch_up()
        runner.release()
        store.close()
        grace = timedelta(seconds=60)
        full = run_audit(session, list(VIEWS.values()), now=utc_now, alert_grace=grace,
                         check_dispatch=False)
        log_only = run_audit(session, [], now=utc_now, alert_grace=grace, check_dispatch=False)
        container.close()
        print(f"jobs {full.jobs}, events {full.events}, ok {full.ok}, violations "
              f"{len(full.violations)}, {full.statuses}; audit with every view verified "
              f"{full.seconds:.2f}s, log and job_status only {log_only.seconds:.2f}s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
