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
SELECT originator_id::text, count(*), min(originator_version), max(originator_version),
    min(notification_id), max(notification_id)
FROM jobledger_events WHERE originator_id = ANY(%(ids)s::uuid[]) GROUP BY originator_id;

-- name: frames
-- Each block's events in position order as a binary COPY's output (signature, flags,
-- no extension; then each row: field count,
-- each field's length and bytes: int8, text, int8, text, bytea), built by the server;
-- and the count of rows with a null field (string_agg would leave them out).
SELECT b.block, count(*) FILTER (WHERE e.topic IS NULL OR e.state IS NULL),
    '\x5047434f50590aff0d0a000000000000000000'::bytea || string_agg(
    int2send(5::int2) || int4send(8) || int8send(e.notification_id)
    || int4send(36) || convert_to(e.originator_id::text, 'UTF8')
    || int4send(8) || int8send(e.originator_version)
    || int4send(octet_length(convert_to(e.topic, 'UTF8'))) || convert_to(e.topic, 'UTF8')
    || int4send(octet_length(e.state)) || e.state,
    ''::bytea ORDER BY e.notification_id) || '\xffff'::bytea
FROM jobledger_events e
JOIN unnest(%(ids)s::uuid[], %(blocks)s::int[]) AS b(id, block) ON e.originator_id = b.id
GROUP BY b.block ORDER BY b.block;

-- name: delete_checked
WITH gone AS (
    DELETE FROM jobledger_events WHERE originator_id = ANY(%(ids)s::uuid[])
    RETURNING originator_id, originator_version
), shape AS (
    SELECT originator_id, count(*) AS n, min(originator_version) AS low,
        max(originator_version) AS high
    FROM gone GROUP BY originator_id
), wanted AS (
    SELECT * FROM unnest(%(ids)s::uuid[], %(versions)s::bigint[]) AS w(id, n)
)
SELECT count(*) FROM wanted w FULL JOIN shape s ON s.originator_id = w.id
WHERE s.originator_id IS NULL OR w.id IS NULL OR s.n <> w.n OR s.low <> 1 OR s.high <> w.n;

-- name: insert_jobs
INSERT INTO archived_jobs (job_id, segment, frame_offset, frame_length)
SELECT * FROM unnest(%(ids)s::uuid[], %(segments)s::bigint[],
    %(offsets)s::bigint[], %(lengths)s::bigint[]);

-- name: snapshot
SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY;

-- name: vacuum
VACUUM (ANALYZE) {table};
