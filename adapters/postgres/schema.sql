-- The current schema of job-ledger's own tables on PostgreSQL that are no view's.
--
-- The views' tables are not here: their DDL is derived from each view's Table
-- declaration (adapters/postgres/ddl.py), under their own name, a shadow name (rebuild)
-- or a scratch name (verify). The numbered files in migrations/ must produce exactly
-- these tables plus the views' as declared, from an empty database
-- (tests/integration/test_migrations.py).

-- name: projection_tracking
CREATE TABLE projection_tracking (
    view_name text NOT NULL,
    position bigint NOT NULL DEFAULT 0,
    generation integer NOT NULL DEFAULT 0,
    owner text,
    error text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT projection_tracking_pkey PRIMARY KEY (view_name)
);

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
    job_queue text NOT NULL DEFAULT 'default',
    priority integer NOT NULL DEFAULT 0,
    CONSTRAINT local_queue_messages_pkey PRIMARY KEY (seq),
    CONSTRAINT local_queue_messages_message_id_key UNIQUE (message_id)
);
CREATE INDEX local_queue_messages_ready_idx ON local_queue_messages (queue_name, priority DESC, visible_at, seq) WHERE dead_at IS NULL;
CREATE INDEX local_queue_messages_dead_idx ON local_queue_messages (queue_name, dead_at, seq) WHERE dead_at IS NOT NULL;
CREATE INDEX local_queue_messages_job_queue_ready_idx ON local_queue_messages (queue_name, job_queue, priority DESC, visible_at, seq) WHERE dead_at IS NULL;

-- name: rate_limit_windows
CREATE TABLE rate_limit_windows (
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

-- name: view_checkpoints
CREATE TABLE view_checkpoints (
    id text NOT NULL,
    view_name text NOT NULL,
    position bigint NOT NULL,
    generation bigint NOT NULL,
    taken_at timestamptz NOT NULL,
    row_count bigint NOT NULL,
    byte_count bigint NOT NULL,
    sha256 text NOT NULL,
    format_version text NOT NULL,
    CONSTRAINT view_checkpoints_pkey PRIMARY KEY (id)
);
CREATE INDEX view_checkpoints_view_position_idx ON view_checkpoints (view_name, position);

-- name: view_checkpoint_chunks
CREATE TABLE view_checkpoint_chunks (
    checkpoint_id text NOT NULL,
    seq integer NOT NULL,
    data bytea NOT NULL,
    CONSTRAINT view_checkpoint_chunks_pkey PRIMARY KEY (checkpoint_id, seq)
);

-- name: dispatch_holds
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

-- name: archive_segments
CREATE TABLE archive_segments (
    seq bigint NOT NULL,
    name text NOT NULL,
    first_position bigint NOT NULL,
    last_position bigint NOT NULL,
    job_count bigint NOT NULL,
    event_count bigint NOT NULL,
    byte_count bigint NOT NULL,
    sha256 text NOT NULL,
    previous_sha256 text NOT NULL,
    created_at timestamp with time zone NOT NULL,
    CONSTRAINT archive_segments_pkey PRIMARY KEY (seq)
);

-- name: archived_jobs
CREATE TABLE archived_jobs (
    job_id uuid NOT NULL,
    segment bigint NOT NULL,
    frame_offset bigint NOT NULL,
    frame_length bigint NOT NULL,
    CONSTRAINT archived_jobs_pkey PRIMARY KEY (job_id)
);

-- name: outbox_positions
CREATE TABLE outbox_positions (
    position bigint NOT NULL,
    CONSTRAINT outbox_positions_pkey PRIMARY KEY (position)
);
