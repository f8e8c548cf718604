-- The current schema of job-ledger's own tables on SQLite, as templates.
--
-- Each view table is created from its template under its own name, or under a shadow
-- name (rebuild) or a scratch name (verify): {table} is the table and {<suffix>} each
-- secondary index. The first statement of a section creates the table, the others its
-- indexes (a rebuild creates those after the swap: SQLite cannot rename an index). Times
-- are ISO-8601 text in UTC with microseconds, so text order is time order; ids are
-- canonical UUID text. The numbered files in migrations/ must produce exactly this
-- schema from an empty database (tests/integration/test_migrations.py).

-- name: projection_tracking
CREATE TABLE {table} (
    view_name TEXT NOT NULL PRIMARY KEY,
    position INTEGER NOT NULL DEFAULT 0,
    generation INTEGER NOT NULL DEFAULT 0,
    owner TEXT,
    error TEXT,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now'))
);

-- name: job_status
CREATE TABLE {table} (
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
CREATE INDEX {in_progress_idx} ON {table} (last_heartbeat_at) WHERE status = 'in_progress';
CREATE INDEX {customer_idx} ON {table} (customer_id, enqueued_at, job_id);
CREATE INDEX {dead_lettered_idx} ON {table} (finished_at, job_id) WHERE status = 'dead_lettered';
CREATE INDEX {status_idx} ON {table} (status, enqueued_at, job_id);

-- name: queue_history
CREATE TABLE {table} (
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
CREATE INDEX {job_idx} ON {table} (job_id, position);
CREATE INDEX {queue_idx} ON {table} (queue, position);
CREATE INDEX {customer_idx} ON {table} (customer_id, position);

-- name: queue_history_jobs
CREATE TABLE {table} (
    job_id TEXT NOT NULL PRIMARY KEY,
    customer_id TEXT NOT NULL,
    queue TEXT NOT NULL
);

-- name: health_jobs
CREATE TABLE {table} (
    job_id TEXT NOT NULL PRIMARY KEY,
    queue TEXT NOT NULL,
    status TEXT NOT NULL,
    last_heartbeat_at TEXT
);
CREATE INDEX {in_progress_idx} ON {table} (last_heartbeat_at, queue) WHERE status = 'in_progress';

-- name: health_queues
CREATE TABLE {table} (
    queue TEXT NOT NULL PRIMARY KEY,
    pending INTEGER NOT NULL DEFAULT 0,
    in_progress INTEGER NOT NULL DEFAULT 0,
    completed INTEGER NOT NULL DEFAULT 0,
    dead_lettered INTEGER NOT NULL DEFAULT 0
);

-- name: health_daily
CREATE TABLE {table} (
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

-- name: health_workers
CREATE TABLE {table} (
    worker_id TEXT NOT NULL,
    queue TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    PRIMARY KEY (worker_id, queue)
);
CREATE INDEX {seen_idx} ON {table} (last_seen_at);

-- name: rate_limit_counters
CREATE TABLE {table} (
    subject TEXT NOT NULL,
    window_start TEXT NOT NULL,
    enqueued INTEGER NOT NULL DEFAULT 0,
    admitted INTEGER NOT NULL DEFAULT 0,
    refused INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (subject, window_start)
);
CREATE INDEX {window_idx} ON {table} (window_start);

-- name: dead_letter_alerts
CREATE TABLE {table} (
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
CREATE INDEX {pending_idx} ON {table} (dead_lettered_at) WHERE alert_status = 'pending';

-- Tables of other parts of the ledger, as their migrations leave them today (they
-- have no shadow copies: sections without placeholders are created as written).

-- name: local_queue_messages
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

-- name: rate_limit_windows
CREATE TABLE rate_limit_windows (
    bucket text NOT NULL,
    window_start integer NOT NULL,
    window_end integer NOT NULL,
    limit_value integer NOT NULL,
    hits integer NOT NULL,
    admitted integer NOT NULL,
    last_admitted integer NOT NULL,
    CONSTRAINT rate_limit_windows_pkey PRIMARY KEY (bucket, window_start)
);
CREATE INDEX rate_limit_windows_end_idx ON rate_limit_windows (window_end);

-- name: api_keys
CREATE TABLE api_keys (
    key_id text NOT NULL,
    key_hash text NOT NULL,
    role text NOT NULL,
    customer_id text,
    label text,
    created_at text NOT NULL,
    revoked_at text,
    CONSTRAINT api_keys_pkey PRIMARY KEY (key_id),
    CONSTRAINT api_keys_role_check CHECK (role IN ('worker', 'service', 'staff', 'admin'))
);
