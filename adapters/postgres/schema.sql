-- The current schema of job-ledger's own tables on PostgreSQL, as templates.
--
-- Each view table is created from its template under its own name, or under a shadow
-- name (rebuild) or a scratch name (verify): {table} is the table, {pkey} its primary key
-- constraint and {<suffix>} each secondary index. The numbered files in migrations/ must
-- produce exactly this schema from an empty database (tests/integration/test_migrations.py).

-- name: projection_tracking
CREATE TABLE {table} (
    view_name text NOT NULL,
    position bigint NOT NULL DEFAULT 0,
    generation integer NOT NULL DEFAULT 0,
    owner text,
    error text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT {pkey} PRIMARY KEY (view_name)
);

-- name: job_status
CREATE TABLE {table} (
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
    CONSTRAINT {pkey} PRIMARY KEY (job_id)
);
CREATE INDEX {in_progress_idx} ON {table} (last_heartbeat_at) WHERE status = 'in_progress';
CREATE INDEX {customer_idx} ON {table} (customer_id, enqueued_at, job_id);
CREATE INDEX {dead_lettered_idx} ON {table} (finished_at, job_id) WHERE status = 'dead_lettered';
CREATE INDEX {status_idx} ON {table} (status, enqueued_at, job_id);

-- name: queue_history
CREATE TABLE {table} (
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
    CONSTRAINT {pkey} PRIMARY KEY (position)
);
CREATE INDEX {job_idx} ON {table} (job_id, position);
CREATE INDEX {queue_idx} ON {table} (queue, position);
CREATE INDEX {customer_idx} ON {table} (customer_id, position);

-- name: queue_history_jobs
CREATE TABLE {table} (
    job_id uuid NOT NULL,
    customer_id text NOT NULL,
    queue text NOT NULL,
    CONSTRAINT {pkey} PRIMARY KEY (job_id)
);

-- name: health_jobs
CREATE TABLE {table} (
    job_id uuid NOT NULL,
    queue text NOT NULL,
    status text NOT NULL,
    last_heartbeat_at timestamptz,
    CONSTRAINT {pkey} PRIMARY KEY (job_id)
);
CREATE INDEX {in_progress_idx} ON {table} (last_heartbeat_at, queue) WHERE status = 'in_progress';

-- name: health_queues
CREATE TABLE {table} (
    queue text NOT NULL,
    pending bigint NOT NULL DEFAULT 0,
    in_progress bigint NOT NULL DEFAULT 0,
    completed bigint NOT NULL DEFAULT 0,
    dead_lettered bigint NOT NULL DEFAULT 0,
    CONSTRAINT {pkey} PRIMARY KEY (queue)
);

-- name: health_daily
CREATE TABLE {table} (
    day date NOT NULL,
    queue text NOT NULL,
    enqueued bigint NOT NULL DEFAULT 0,
    completed bigint NOT NULL DEFAULT 0,
    failed bigint NOT NULL DEFAULT 0,
    stale bigint NOT NULL DEFAULT 0,
    dead_lettered bigint NOT NULL DEFAULT 0,
    redriven bigint NOT NULL DEFAULT 0,
    CONSTRAINT {pkey} PRIMARY KEY (day, queue)
);

-- name: health_workers
CREATE TABLE {table} (
    worker_id text NOT NULL,
    queue text NOT NULL,
    last_seen_at timestamptz NOT NULL,
    CONSTRAINT {pkey} PRIMARY KEY (worker_id, queue)
);
CREATE INDEX {seen_idx} ON {table} (last_seen_at);

-- name: rate_limit_counters
CREATE TABLE {table} (
    subject text NOT NULL,
    window_start timestamptz NOT NULL,
    enqueued bigint NOT NULL DEFAULT 0,
    admitted bigint NOT NULL DEFAULT 0,
    refused bigint NOT NULL DEFAULT 0,
    CONSTRAINT {pkey} PRIMARY KEY (subject, window_start)
);
CREATE INDEX {window_idx} ON {table} (window_start);

-- name: dead_letter_alerts
CREATE TABLE {table} (
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
    CONSTRAINT {pkey} PRIMARY KEY (job_id, dead_letter_version)
);
CREATE INDEX {pending_idx} ON {table} (dead_lettered_at) WHERE alert_status = 'pending';

-- Tables of other parts of the ledger, as their migrations leave them today (they
-- have no shadow copies: sections without placeholders are created as written).

-- name: local_queue_messages
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

-- name: rate_limit_windows
CREATE UNLOGGED TABLE rate_limit_windows (
    bucket text NOT NULL,
    window_start bigint NOT NULL,
    window_end bigint NOT NULL,
    limit_value integer NOT NULL,
    hits bigint NOT NULL,
    admitted integer NOT NULL,
    last_admitted integer NOT NULL,
    CONSTRAINT rate_limit_windows_pkey PRIMARY KEY (bucket, window_start)
) WITH (fillfactor = 70);
CREATE INDEX rate_limit_windows_end_idx ON rate_limit_windows (window_end);

-- name: api_keys
CREATE TABLE api_keys (
    key_id text NOT NULL,
    key_hash text NOT NULL,
    role text NOT NULL,
    customer_id text,
    label text,
    created_at timestamptz NOT NULL,
    revoked_at timestamptz,
    CONSTRAINT api_keys_pkey PRIMARY KEY (key_id),
    CONSTRAINT api_keys_role_check CHECK (role IN ('worker', 'service', 'staff', 'admin'))
);
