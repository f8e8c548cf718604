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
