-- 0026: the dispatcher's holds (issue 14, ADR 100): the sends of a paused queue's jobs,
-- recorded with the dispatcher's position and sent when the queue is resumed.

CREATE TABLE dispatch_holds (
    job_id TEXT NOT NULL PRIMARY KEY,
    queue_id TEXT NOT NULL,
    queue TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    priority INTEGER NOT NULL,
    dedup_key TEXT NOT NULL,
    position INTEGER NOT NULL
);
CREATE INDEX dispatch_holds_queue_idx ON dispatch_holds (queue_id, position);
