-- 0006: the dead-letter alert outbox view (issue 4).

CREATE TABLE dead_letter_alerts (
    job_id TEXT NOT NULL,
    dead_letter_version INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    attempts_used INTEGER NOT NULL,
    reason TEXT NOT NULL,
    last_error TEXT,
    source TEXT NOT NULL,
    message_id TEXT,
    dead_lettered_at TEXT NOT NULL,
    alert_status TEXT NOT NULL,
    alerted_at TEXT,
    alert_detail TEXT,
    PRIMARY KEY (job_id, dead_letter_version)
);
CREATE INDEX dead_letter_alerts_pending_idx ON dead_letter_alerts (dead_lettered_at) WHERE alert_status = 'pending';
