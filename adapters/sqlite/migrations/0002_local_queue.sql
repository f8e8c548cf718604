-- 0002: the local queue (issue 4), the transport of the embedded default.
-- One row per message; times are epoch seconds (REAL) of the queue's clock. A row with
-- dead_at set is in the dead-letter queue. receipt changes on every receive.

CREATE TABLE local_queue_messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    queue_name TEXT NOT NULL,
    message_id TEXT NOT NULL UNIQUE,
    job_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    body TEXT NOT NULL,
    sent_at REAL NOT NULL,
    visible_at REAL NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt TEXT,
    dead_at REAL
);
CREATE INDEX local_queue_messages_ready_idx ON local_queue_messages (queue_name, visible_at, seq) WHERE dead_at IS NULL;
CREATE INDEX local_queue_messages_dead_idx ON local_queue_messages (queue_name, dead_at, seq) WHERE dead_at IS NOT NULL;
