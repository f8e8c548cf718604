-- 0001: projection views and their tracking (issue 3).

CREATE TABLE projection_tracking (
    view_name text NOT NULL,
    position bigint NOT NULL DEFAULT 0,
    generation integer NOT NULL DEFAULT 0,
    owner text,
    error text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT projection_tracking_pkey PRIMARY KEY (view_name)
);

CREATE TABLE job_status (
    job_id uuid NOT NULL,
    customer_id text NOT NULL,
    queue text NOT NULL,
    status text NOT NULL,
    attempt bigint NOT NULL,
    attempts_used bigint NOT NULL,
    max_attempts bigint NOT NULL,
    worker_id text,
    enqueued_at timestamptz NOT NULL,
    started_at timestamptz,
    last_heartbeat_at timestamptz,
    finished_at timestamptz,
    not_before timestamptz,
    last_error text,
    heartbeats bigint NOT NULL,
    refused_reports bigint NOT NULL,
    version bigint NOT NULL,
    updated_at timestamptz NOT NULL,
    CONSTRAINT job_status_pkey PRIMARY KEY (job_id)
);
CREATE INDEX job_status_in_progress_idx ON job_status (last_heartbeat_at) WHERE status = 'in_progress';
CREATE INDEX job_status_customer_idx ON job_status (customer_id, enqueued_at, job_id);
CREATE INDEX job_status_dead_lettered_idx ON job_status (finished_at, job_id) WHERE status = 'dead_lettered';
CREATE INDEX job_status_status_idx ON job_status (status, enqueued_at, job_id);

CREATE TABLE queue_history (
    position bigint NOT NULL,
    job_id uuid NOT NULL,
    customer_id text NOT NULL,
    queue text NOT NULL,
    action text NOT NULL,
    attempt bigint NOT NULL,
    actor text NOT NULL,
    reason text,
    detail text,
    recorded_at timestamptz NOT NULL,
    CONSTRAINT queue_history_pkey PRIMARY KEY (position)
);
CREATE INDEX queue_history_job_idx ON queue_history (job_id, position);
CREATE INDEX queue_history_queue_idx ON queue_history (queue, position);
CREATE INDEX queue_history_customer_idx ON queue_history (customer_id, position);

CREATE TABLE queue_history_jobs (
    job_id uuid NOT NULL,
    customer_id text NOT NULL,
    queue text NOT NULL,
    CONSTRAINT queue_history_jobs_pkey PRIMARY KEY (job_id)
);

CREATE TABLE health_jobs (
    job_id uuid NOT NULL,
    queue text NOT NULL,
    status text NOT NULL,
    last_heartbeat_at timestamptz,
    CONSTRAINT health_jobs_pkey PRIMARY KEY (job_id)
);
CREATE INDEX health_jobs_in_progress_idx ON health_jobs (last_heartbeat_at, queue) WHERE status = 'in_progress';

CREATE TABLE health_queues (
    queue text NOT NULL,
    pending bigint NOT NULL DEFAULT 0,
    in_progress bigint NOT NULL DEFAULT 0,
    completed bigint NOT NULL DEFAULT 0,
    dead_lettered bigint NOT NULL DEFAULT 0,
    CONSTRAINT health_queues_pkey PRIMARY KEY (queue)
);

CREATE TABLE health_daily (
    day date NOT NULL,
    queue text NOT NULL,
    enqueued bigint NOT NULL DEFAULT 0,
    completed bigint NOT NULL DEFAULT 0,
    failed bigint NOT NULL DEFAULT 0,
    stale bigint NOT NULL DEFAULT 0,
    dead_lettered bigint NOT NULL DEFAULT 0,
    redriven bigint NOT NULL DEFAULT 0,
    CONSTRAINT health_daily_pkey PRIMARY KEY (day, queue)
);

CREATE TABLE health_workers (
    worker_id text NOT NULL,
    queue text NOT NULL,
    last_seen_at timestamptz NOT NULL,
    CONSTRAINT health_workers_pkey PRIMARY KEY (worker_id, queue)
);
CREATE INDEX health_workers_seen_idx ON health_workers (last_seen_at);

CREATE TABLE rate_limit_counters (
    subject text NOT NULL,
    window_start timestamptz NOT NULL,
    enqueued bigint NOT NULL DEFAULT 0,
    admitted bigint NOT NULL DEFAULT 0,
    refused bigint NOT NULL DEFAULT 0,
    CONSTRAINT rate_limit_counters_pkey PRIMARY KEY (subject, window_start)
);
CREATE INDEX rate_limit_counters_window_idx ON rate_limit_counters (window_start);
