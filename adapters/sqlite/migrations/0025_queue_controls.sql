-- 0025: the queue_controls view (issue 14: paused queues and each queue's running vs cap).

CREATE TABLE queue_controls (
    queue_id TEXT NOT NULL PRIMARY KEY,
    queue TEXT NOT NULL,
    paused INTEGER NOT NULL,
    paused_by TEXT,
    paused_reason TEXT,
    paused_at TEXT,
    max_running INTEGER,
    running INTEGER NOT NULL
);
