-- 0040: archive segments (issue 17, ADR 110): the manifest of each segment (a hash
-- chain) and where each archived job's events are (its segment and frame).

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

CREATE TABLE archived_jobs (
    job_id uuid NOT NULL,
    segment bigint NOT NULL,
    frame_offset bigint NOT NULL,
    frame_length bigint NOT NULL,
    CONSTRAINT archived_jobs_pkey PRIMARY KEY (job_id)
);
