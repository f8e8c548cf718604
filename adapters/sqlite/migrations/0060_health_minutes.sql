-- 0060: the health_minutes view (issue 15: the console's per-minute charts, ADR 140).

CREATE TABLE health_minutes (
    minute TEXT NOT NULL PRIMARY KEY,
    enqueued INTEGER NOT NULL DEFAULT 0,
    completed INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    dead_lettered INTEGER NOT NULL DEFAULT 0,
    stale INTEGER NOT NULL DEFAULT 0
);
