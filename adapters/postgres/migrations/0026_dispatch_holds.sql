-- 0026: the dispatcher's holds (issue 14, ADR 100): the sends of a paused queue's jobs,
-- recorded with the dispatcher's position and sent when the queue is resumed.

CREATE TABLE dispatch_holds (
    job_id text NOT NULL,
    queue_id text NOT NULL,
    queue text NOT NULL,
    customer_id text NOT NULL,
    attempt bigint NOT NULL,
    priority bigint NOT NULL,
    dedup_key text NOT NULL,
    position bigint NOT NULL,
    CONSTRAINT dispatch_holds_pkey PRIMARY KEY (job_id)
);
CREATE INDEX dispatch_holds_queue_idx ON dispatch_holds (queue_id, position);
