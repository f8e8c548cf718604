-- 0051: the schedules view keeps the version of the schedule each row folds (ADR 130), so
-- a ticker decides on the row and the schedule's optimistic concurrency checks it.
-- SQLite cannot add a column where the declaration puts it, so the table is rebuilt
-- from its declaration and its rows copied (their version unknown: NULL).

CREATE TABLE "schedules_0051" (
    "schedule_id" TEXT NOT NULL PRIMARY KEY,
    "name" TEXT NOT NULL,
    "cron" TEXT NOT NULL,
    "timezone" TEXT NOT NULL,
    "queue" TEXT NOT NULL,
    "customer_id" TEXT NOT NULL,
    "payload" TEXT NOT NULL,
    "missed" TEXT NOT NULL,
    "priority" INTEGER NOT NULL,
    "max_attempts" INTEGER NOT NULL,
    "state" TEXT NOT NULL,
    "next_tick" TEXT,
    "last_tick" TEXT,
    "last_late" REAL,
    "last_fired_by" TEXT,
    "ticks" INTEGER NOT NULL,
    "changed_by" TEXT NOT NULL,
    "changed_reason" TEXT,
    "changed_at" TEXT NOT NULL,
    "version" INTEGER
);
INSERT INTO schedules_0051 SELECT schedule_id, name, cron, timezone, queue, customer_id, payload, missed, priority, max_attempts, state, next_tick, last_tick, last_late, last_fired_by, ticks, changed_by, changed_reason, changed_at, NULL FROM schedules;
DROP TABLE schedules;
ALTER TABLE schedules_0051 RENAME TO schedules;
CREATE INDEX "schedules_due_idx" ON "schedules" ("next_tick") WHERE "state" = 'active';
