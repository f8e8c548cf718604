-- Queries of the archive on PostgreSQL (ADR 110). Tables: migrations/0040.

-- name: candidates
SELECT s.job_id FROM job_status s
WHERE s.status IN ('completed', 'cancelled') AND s.finished_at < %(cut)s
  AND NOT EXISTS (SELECT 1 FROM archived_jobs a WHERE a.job_id = s.job_id::uuid)
ORDER BY s.finished_at LIMIT %(limit)s;

-- name: events_of
SELECT notification_id, originator_id::text, originator_version, topic, state
FROM jobledger_events WHERE originator_id = ANY(%(ids)s::uuid[]);

-- name: head
SELECT coalesce(max(notification_id), 0) FROM jobledger_events;

-- name: lock_events
LOCK TABLE jobledger_events IN EXCLUSIVE MODE;

-- name: stream_shapes
SELECT originator_id::text, count(*), min(originator_version), max(originator_version)
FROM jobledger_events WHERE originator_id = ANY(%(ids)s::uuid[]) GROUP BY originator_id;

-- name: delete_events
DELETE FROM jobledger_events WHERE originator_id = ANY(%(ids)s::uuid[]);

-- name: delete_snapshots
DELETE FROM jobledger_snapshots WHERE originator_id = ANY(%(ids)s::uuid[]);

-- name: insert_segment
INSERT INTO archive_segments (seq, name, first_position, last_position, job_count,
    event_count, byte_count, sha256, previous_sha256, created_at)
VALUES (%(seq)s, %(name)s, %(first_position)s, %(last_position)s, %(job_count)s,
    %(event_count)s, %(byte_count)s, %(sha256)s, %(previous_sha256)s, %(created_at)s);

-- name: insert_jobs
INSERT INTO archived_jobs (job_id, segment, frame_offset, frame_length)
SELECT * FROM unnest(%(ids)s::uuid[], %(segments)s::bigint[], %(offsets)s::bigint[],
    %(lengths)s::bigint[]);

-- name: segments
SELECT seq, name, first_position, last_position, job_count, event_count, byte_count,
    sha256, previous_sha256, created_at
FROM archive_segments ORDER BY seq;

-- name: locate
SELECT job_id::text, segment, frame_offset, frame_length FROM archived_jobs
WHERE job_id = %(id)s::uuid;

-- name: hot_stats
SELECT count(*), min(notification_id) FROM jobledger_events;

-- name: event_at
SELECT notification_id, originator_id::text, originator_version, topic, state
FROM jobledger_events WHERE notification_id = %(position)s;
