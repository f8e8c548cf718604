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

-- name: delete_snapshots
DELETE FROM jobledger_snapshots WHERE originator_id = ANY(%(ids)s::uuid[]);

-- name: insert_segment
INSERT INTO archive_segments (seq, name, first_position, last_position, job_count,
    event_count, byte_count, sha256, previous_sha256, created_at)
VALUES (%(seq)s, %(name)s, %(first_position)s, %(last_position)s, %(job_count)s,
    %(event_count)s, %(byte_count)s, %(sha256)s, %(previous_sha256)s, %(created_at)s);

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

-- name: shapes
-- Each job's event count, versions and positions, and how many of its events lack a
-- topic or state (a frame cannot hold them: the archive refuses the batch).
SELECT originator_id::text, count(*), min(originator_version), max(originator_version),
    min(notification_id), max(notification_id),
    count(*) FILTER (WHERE topic IS NULL OR state IS NULL)
FROM jobledger_events WHERE originator_id = ANY(%(ids)s::uuid[]) GROUP BY originator_id;

-- name: frames
-- A block's events in position order as a binary COPY's output: each frame's bytes as
-- they are (signature, flags, no extension; each row: field count, each field's length
-- and bytes: int8, text, int8, text, bytea; the trailer). shapes has refused nulls.
COPY (SELECT notification_id, originator_id::text, originator_version, topic, state
      FROM jobledger_events WHERE originator_id = ANY(%(ids)s::uuid[])
      ORDER BY notification_id) TO STDOUT (FORMAT binary);

-- name: outside_streams
-- The jobs' events outside the versions 1..n the segment holds: one index probe per job
-- and bound (LATERAL ... LIMIT 1 keeps the planner from scanning the table). With the
-- primary key (originator_id, originator_version), none outside and as many deleted as
-- the segment holds mean each job's stream was exactly 1..n (ADR 111).
SELECT count(*) FROM unnest(%(ids)s::uuid[], %(versions)s::bigint[]) AS w(id, n),
LATERAL ((SELECT 1 FROM jobledger_events e
          WHERE e.originator_id = w.id AND e.originator_version > w.n LIMIT 1)
         UNION ALL (SELECT 1 FROM jobledger_events e
          WHERE e.originator_id = w.id AND e.originator_version < 1 LIMIT 1)) AS outside;

-- name: delete_events
DELETE FROM jobledger_events WHERE originator_id = ANY(%(ids)s::uuid[]);

-- name: insert_jobs
INSERT INTO archived_jobs (job_id, segment, frame_offset, frame_length)
SELECT * FROM unnest(%(ids)s::uuid[], %(segments)s::bigint[],
    %(offsets)s::bigint[], %(lengths)s::bigint[]);

-- name: snapshot
SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY;

-- name: export_snapshot
SELECT pg_export_snapshot();

-- name: due
-- What candidates would select, counted (the archive policy's gate, ADR 110).
SELECT count(*), coalesce(sum(s.version), 0), min(s.finished_at) FROM job_status s
WHERE s.status IN ('completed', 'cancelled') AND s.finished_at < %(cut)s
  AND NOT EXISTS (SELECT 1 FROM archived_jobs a WHERE a.job_id = s.job_id::uuid);

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
SELECT job_id::text FROM archived_jobs;
