-- The current schema of job-ledger's own tables on SQLite that are no view's.
--
-- The views' tables are not here: their DDL is derived from each view's Table
-- declaration (adapters/sqlite/ddl.py), under their own name, a shadow name (rebuild)
-- or a scratch name (verify). Times are ISO-8601 text in UTC with microseconds, so text
-- order is time order; ids are canonical UUID text. The numbered files in migrations/
-- must produce exactly these tables plus the views' as declared, from an empty database
-- (tests/integration/test_migrations.py).

-- name: projection_tracking
CREATE TABLE projection_tracking (
    view_name TEXT NOT NULL PRIMARY KEY,
    position INTEGER NOT NULL DEFAULT 0,
    generation INTEGER NOT NULL DEFAULT 0,
    owner TEXT,
    error TEXT,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now'))
);

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
, job_queue TEXT NOT NULL DEFAULT 'default', priority INTEGER NOT NULL DEFAULT 0);
CREATE INDEX local_queue_messages_ready_idx ON local_queue_messages (queue_name, priority DESC, visible_at, seq) WHERE dead_at IS NULL;
CREATE INDEX local_queue_messages_dead_idx ON local_queue_messages (queue_name, dead_at, seq) WHERE dead_at IS NOT NULL;
CREATE INDEX local_queue_messages_job_queue_ready_idx ON local_queue_messages (queue_name, job_queue, priority DESC, visible_at, seq) WHERE dead_at IS NULL;

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

-- name: view_checkpoints
CREATE TABLE view_checkpoints (
    id TEXT NOT NULL PRIMARY KEY,
    view_name TEXT NOT NULL,
    position INTEGER NOT NULL,
    generation INTEGER NOT NULL,
    taken_at TEXT NOT NULL,
    row_count INTEGER NOT NULL,
    byte_count INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    format_version TEXT NOT NULL
);
CREATE INDEX view_checkpoints_view_position_idx ON view_checkpoints (view_name, position);

-- name: view_checkpoint_chunks
CREATE TABLE view_checkpoint_chunks (
    checkpoint_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (checkpoint_id, seq)
);

-- name: dispatch_holds
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

-- name: archive_segments
CREATE TABLE archive_segments (
    seq INTEGER NOT NULL PRIMARY KEY,
    name TEXT NOT NULL,
    first_position INTEGER NOT NULL,
    last_position INTEGER NOT NULL,
    job_count INTEGER NOT NULL,
    event_count INTEGER NOT NULL,
    byte_count INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    previous_sha256 TEXT NOT NULL,
    created_at TEXT NOT NULL
);

-- name: archived_jobs
CREATE TABLE archived_jobs (
    job_id TEXT NOT NULL PRIMARY KEY,
    segment INTEGER NOT NULL,
    frame_offset INTEGER NOT NULL,
    frame_length INTEGER NOT NULL
);

-- name: outbox_positions
CREATE TABLE outbox_positions (
    position INTEGER NOT NULL PRIMARY KEY
);
