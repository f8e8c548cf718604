-- 0002: the local queue (issue 4), the transport when PostgreSQL holds the ledger and SQS
-- is not configured. One row per message; times are epoch seconds of the queue's clock. A
-- row with dead_at set is in the dead-letter queue. receipt changes on every receive.
-- Receivers claim rows with FOR UPDATE SKIP LOCKED.

CREATE TABLE local_queue_messages (
    seq bigint GENERATED ALWAYS AS IDENTITY,
    queue_name text NOT NULL,
    message_id uuid NOT NULL,
    job_id uuid NOT NULL,
    attempt integer NOT NULL,
    body text NOT NULL,
    sent_at double precision NOT NULL,
    visible_at double precision NOT NULL,
    receive_count integer NOT NULL DEFAULT 0,
    receipt text,
    dead_at double precision,
    CONSTRAINT local_queue_messages_pkey PRIMARY KEY (seq),
    CONSTRAINT local_queue_messages_message_id_key UNIQUE (message_id)
);
CREATE INDEX local_queue_messages_ready_idx ON local_queue_messages (queue_name, visible_at, seq) WHERE dead_at IS NULL;
CREATE INDEX local_queue_messages_dead_idx ON local_queue_messages (queue_name, dead_at, seq) WHERE dead_at IS NOT NULL;
