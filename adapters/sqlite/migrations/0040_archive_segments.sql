-- 0040: archive segments (issue 17, ADR 110): the manifest of each segment (a hash
-- chain) and where each archived job's events are (its segment and frame).

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

CREATE TABLE archived_jobs (
    job_id TEXT NOT NULL PRIMARY KEY,
    segment INTEGER NOT NULL,
    frame_offset INTEGER NOT NULL,
    frame_length INTEGER NOT NULL
);
