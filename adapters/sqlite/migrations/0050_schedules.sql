-- 0050: the schedules view (issue 18: cron schedules that fire exactly once, ADR 130).

CREATE TABLE schedules (
    schedule_id TEXT NOT NULL PRIMARY KEY,
    name TEXT NOT NULL,
    cron TEXT NOT NULL,
    timezone TEXT NOT NULL,
    queue TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    missed TEXT NOT NULL,
    priority INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,
    state TEXT NOT NULL,
    next_tick TEXT,
    last_tick TEXT,
    last_late REAL,
    last_fired_by TEXT,
    ticks INTEGER NOT NULL,
    changed_by TEXT NOT NULL,
    changed_reason TEXT,
    changed_at TEXT NOT NULL
);
CREATE INDEX schedules_due_idx ON schedules (next_tick) WHERE state = 'active';
