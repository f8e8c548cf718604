-- Queries of the archive on SQLite (ADR 110). Tables: migrations/0040. Positions are
-- stored_events' rowids; originator ids there are hex, canonical text elsewhere.

-- name: candidates
SELECT s.job_id FROM job_status s
WHERE s.status IN ('completed', 'cancelled') AND s.finished_at < :cut
  AND NOT EXISTS (SELECT 1 FROM archived_jobs a WHERE a.job_id = s.job_id)
ORDER BY s.finished_at LIMIT :limit;

-- name: events_of
SELECT rowid, originator_id, originator_version, topic, state FROM stored_events
WHERE originator_id = :id ORDER BY originator_version;

-- name: head
SELECT coalesce(max(rowid), 0) FROM stored_events;

-- name: stream_shape
SELECT count(*), coalesce(min(originator_version), 0), coalesce(max(originator_version), 0)
FROM stored_events WHERE originator_id = :id;

-- name: delete_events
DELETE FROM stored_events WHERE originator_id = :id;

-- name: delete_snapshots
DELETE FROM stored_snapshots WHERE originator_id = :id;

-- name: insert_segment
INSERT INTO archive_segments (seq, name, first_position, last_position, job_count,
    event_count, byte_count, sha256, previous_sha256, created_at)
VALUES (:seq, :name, :first_position, :last_position, :job_count, :event_count,
    :byte_count, :sha256, :previous_sha256, :created_at);

-- name: insert_job
INSERT INTO archived_jobs (job_id, segment, frame_offset, frame_length)
VALUES (:job_id, :segment, :offset, :length);

-- name: segments
SELECT seq, name, first_position, last_position, job_count, event_count, byte_count,
    sha256, previous_sha256, created_at
FROM archive_segments ORDER BY seq;

-- name: locate
SELECT job_id, segment, frame_offset, frame_length FROM archived_jobs WHERE job_id = :id;

-- name: hot_stats
SELECT count(*), coalesce(min(rowid), 0) FROM stored_events;

-- name: event_at
SELECT rowid, originator_id, originator_version, topic, state FROM stored_events
WHERE rowid = :position;

-- name: due
-- What candidates would select, counted (the archive policy's gate, ADR 110).
SELECT count(*), coalesce(sum(s.version), 0), min(s.finished_at) FROM job_status s
WHERE s.status IN ('completed', 'cancelled') AND s.finished_at < :cut
  AND NOT EXISTS (SELECT 1 FROM archived_jobs a WHERE a.job_id = s.job_id);

-- name: latest_segment
SELECT seq, name, first_position, last_position, job_count, event_count, byte_count,
    sha256, previous_sha256, created_at
FROM archive_segments ORDER BY seq DESC LIMIT 1;

-- name: manifest_summary
SELECT count(*), coalesce(sum(job_count), 0), coalesce(sum(event_count), 0),
    coalesce(sum(byte_count), 0), coalesce(max(last_position), 0),
    (SELECT sha256 FROM archive_segments ORDER BY seq DESC LIMIT 1)
FROM archive_segments;

-- name: broken_links
-- The manifest rows that do not follow the row before: seq not one more, or a
-- predecessor hash other than the previous row's SHA-256 ('' for the first).
SELECT seq, name, previous_sha256, coalesce(prior_sha, '') FROM (
    SELECT seq, name, previous_sha256,
        lag(sha256) OVER (ORDER BY seq) AS prior_sha,
        coalesce(lag(seq) OVER (ORDER BY seq), 0) AS prior_seq
    FROM archive_segments) m
WHERE previous_sha256 <> coalesce(prior_sha, '') OR seq <> prior_seq + 1
ORDER BY seq;

-- name: orphans
SELECT count(*) FROM archived_jobs a
WHERE NOT EXISTS (SELECT 1 FROM archive_segments s WHERE s.seq = a.segment);

-- name: archived_ids
SELECT job_id FROM archived_jobs;
