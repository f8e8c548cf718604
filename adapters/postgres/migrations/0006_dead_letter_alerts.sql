-- 0006: the dead-letter alert outbox view (issue 4).

CREATE TABLE dead_letter_alerts (
    job_id uuid NOT NULL,
    dead_letter_version bigint NOT NULL,
    attempt bigint NOT NULL,
    attempts_used bigint NOT NULL,
    reason text NOT NULL,
    last_error text,
    source text NOT NULL,
    message_id text,
    dead_lettered_at timestamptz NOT NULL,
    alert_status text NOT NULL,
    alerted_at timestamptz,
    alert_detail text,
    CONSTRAINT dead_letter_alerts_pkey PRIMARY KEY (job_id, dead_letter_version)
);
CREATE INDEX dead_letter_alerts_pending_idx ON dead_letter_alerts (dead_lettered_at) WHERE alert_status = 'pending';
