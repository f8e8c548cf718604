-- 0001: projection views and their tracking (issue 3).

CREATE TABLE projection_tracking (
    view_name TEXT NOT NULL PRIMARY KEY,
    position INTEGER NOT NULL DEFAULT 0,
    generation INTEGER NOT NULL DEFAULT 0,
    owner TEXT,
    error TEXT,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now'))
);

CREATE TABLE job_status (
    job_id TEXT NOT NULL PRIMARY KEY,
    customer_id TEXT NOT NULL,
    queue TEXT NOT NULL,
    status TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    attempts_used INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,
    worker_id TEXT,
    enqueued_at TEXT NOT NULL,
    started_at TEXT,
    last_heartbeat_at TEXT,
    finished_at TEXT,
    not_before TEXT,
    last_error TEXT,
    heartbeats INTEGER NOT NULL,
    refused_reports INTEGER NOT NULL,
    version INTEGER NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX job_status_in_progress_idx ON job_status (last_heartbeat_at) WHERE status = 'in_progress';
CREATE INDEX job_status_customer_idx ON job_status (customer_id, enqueued_at, job_id);
CREATE INDEX job_status_dead_lettered_idx ON job_status (finished_at, job_id) WHERE status = 'dead_lettered';
CREATE INDEX job_status_status_idx ON job_status (status, enqueued_at, job_id);

CREATE TABLE queue_history (
    position INTEGER NOT NULL PRIMARY KEY,
    job_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    queue TEXT NOT NULL,
    action TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT,
    detail TEXT,
    recorded_at TEXT NOT NULL
);
CREATE INDEX queue_history_job_idx ON queue_history (job_id, position);
CREATE INDEX queue_history_queue_idx ON queue_history (queue, position);
CREATE INDEX queue_history_customer_idx ON queue_history (customer_id, position);

CREATE TABLE queue_history_jobs (
    job_id TEXT NOT NULL PRIMARY KEY,
    customer_id TEXT NOT NULL,
    queue TEXT NOT NULL
);

CREATE TABLE health_jobs (
    job_id TEXT NOT NULL PRIMARY KEY,
    queue TEXT NOT NULL,
    status TEXT NOT NULL,
    last_heartbeat_at TEXT
);
CREATE INDEX health_jobs_in_progress_idx ON health_jobs (last_heartbeat_at, queue) WHERE status = 'in_progress';

CREATE TABLE health_queues (
    queue TEXT NOT NULL PRIMARY KEY,
    pending INTEGER NOT NULL DEFAULT 0,
    in_progress INTEGER NOT NULL DEFAULT 0,
    completed INTEGER NOT NULL DEFAULT 0,
    dead_lettered INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE health_daily (
    day TEXT NOT NULL,
    queue TEXT NOT NULL,
    enqueued INTEGER NOT NULL DEFAULT 0,
    completed INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    stale INTEGER NOT NULL DEFAULT 0,
    dead_lettered INTEGER NOT NULL DEFAULT 0,
    redriven INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, queue)
);

CREATE TABLE health_workers (
    worker_id TEXT NOT NULL,
    queue TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    PRIMARY KEY (worker_id, queue)
);
CREATE INDEX health_workers_seen_idx ON health_workers (last_seen_at);

CREATE TABLE rate_limit_counters (
    subject TEXT NOT NULL,
    window_start TEXT NOT NULL,
    enqueued INTEGER NOT NULL DEFAULT 0,
    admitted INTEGER NOT NULL DEFAULT 0,
    refused INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (subject, window_start)
);
CREATE INDEX rate_limit_counters_window_idx ON rate_limit_counters (window_start);
