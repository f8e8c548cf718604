-- 0025: the queue_controls view (issue 14: paused queues and each queue's running vs cap).

CREATE TABLE queue_controls (
    queue_id uuid NOT NULL,
    queue text NOT NULL,
    paused bigint NOT NULL,
    paused_by text,
    paused_reason text,
    paused_at timestamptz,
    max_running bigint,
    running bigint NOT NULL,
    CONSTRAINT queue_controls_pkey PRIMARY KEY (queue_id)
);
