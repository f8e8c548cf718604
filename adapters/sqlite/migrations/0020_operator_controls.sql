-- 0020: operator controls (issue 14, ADR 100): job_status gains priority and
-- cancel_requested and a partial index for the scheduler (scheduled rows by not_before);
-- health_queues counts scheduled and cancelled jobs, health_daily cancellations. SQLite
-- cannot add a column where the declaration puts it, so each table is rebuilt from its
-- declaration and its rows copied (existing jobs: priority 0, no cancel requested). A job
-- requeued with a retry delay is scheduled from now on (ADR 100): its rows say so.

CREATE TABLE "job_status_0020" (
    "job_id" TEXT NOT NULL PRIMARY KEY,
    "customer_id" TEXT NOT NULL,
    "queue" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "attempt" INTEGER NOT NULL,
    "attempts_used" INTEGER NOT NULL,
    "max_attempts" INTEGER NOT NULL,
    "worker_id" TEXT,
    "enqueued_at" TEXT NOT NULL,
    "started_at" TEXT,
    "last_heartbeat_at" TEXT,
    "finished_at" TEXT,
    "not_before" TEXT,
    "last_error" TEXT,
    "heartbeats" INTEGER NOT NULL,
    "refused_reports" INTEGER NOT NULL,
    "version" INTEGER NOT NULL,
    "updated_at" TEXT NOT NULL,
    "priority" INTEGER NOT NULL,
    "cancel_requested" INTEGER NOT NULL
);
INSERT INTO job_status_0020 SELECT job_id, customer_id, queue, status, attempt, attempts_used, max_attempts, worker_id, enqueued_at, started_at, last_heartbeat_at, finished_at, not_before, last_error, heartbeats, refused_reports, version, updated_at, 0, 0 FROM job_status;
DROP TABLE job_status;
ALTER TABLE job_status_0020 RENAME TO job_status;
CREATE INDEX "job_status_in_progress_idx" ON "job_status" ("last_heartbeat_at") WHERE "status" = 'in_progress';
CREATE INDEX "job_status_customer_idx" ON "job_status" ("customer_id", "enqueued_at", "job_id");
CREATE INDEX "job_status_dead_lettered_idx" ON "job_status" ("finished_at", "job_id") WHERE "status" = 'dead_lettered';
CREATE INDEX "job_status_status_idx" ON "job_status" ("status", "enqueued_at", "job_id");
CREATE INDEX "job_status_scheduled_idx" ON "job_status" ("not_before") WHERE "status" = 'scheduled';

CREATE TABLE "health_queues_0020" (
    "queue" TEXT NOT NULL PRIMARY KEY,
    "pending" INTEGER NOT NULL DEFAULT 0,
    "in_progress" INTEGER NOT NULL DEFAULT 0,
    "completed" INTEGER NOT NULL DEFAULT 0,
    "dead_lettered" INTEGER NOT NULL DEFAULT 0,
    "scheduled" INTEGER NOT NULL DEFAULT 0,
    "cancelled" INTEGER NOT NULL DEFAULT 0
);
INSERT INTO health_queues_0020 SELECT queue, pending, in_progress, completed, dead_lettered, 0, 0 FROM health_queues;
DROP TABLE health_queues;
ALTER TABLE health_queues_0020 RENAME TO health_queues;

CREATE TABLE "health_daily_0020" (
    "day" TEXT NOT NULL,
    "queue" TEXT NOT NULL,
    "enqueued" INTEGER NOT NULL DEFAULT 0,
    "completed" INTEGER NOT NULL DEFAULT 0,
    "failed" INTEGER NOT NULL DEFAULT 0,
    "stale" INTEGER NOT NULL DEFAULT 0,
    "dead_lettered" INTEGER NOT NULL DEFAULT 0,
    "redriven" INTEGER NOT NULL DEFAULT 0,
    "cancelled" INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY ("day", "queue")
);
INSERT INTO health_daily_0020 SELECT day, queue, enqueued, completed, failed, stale, dead_lettered, redriven, 0 FROM health_daily;
DROP TABLE health_daily;
ALTER TABLE health_daily_0020 RENAME TO health_daily;

UPDATE job_status SET status = 'scheduled' WHERE status = 'pending' AND not_before IS NOT NULL;
UPDATE health_jobs SET status = 'scheduled'
WHERE status = 'pending' AND job_id IN (SELECT job_id FROM job_status WHERE status = 'scheduled');
UPDATE health_queues SET
    pending = pending - (SELECT count(*) FROM health_jobs j WHERE j.queue = health_queues.queue AND j.status = 'scheduled'),
    scheduled = (SELECT count(*) FROM health_jobs j WHERE j.queue = health_queues.queue AND j.status = 'scheduled');
