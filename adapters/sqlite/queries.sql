-- Read-side queries of the views on SQLite, by name. Only the modules in
-- projections/queries/ run them (through the store's ``query``); nobody else writes SQL
-- against the view tables. Rows are read by column name (whole rows as ``SELECT *``, into
-- the struct checked against the view's table declaration), so every result column has a
-- name. Parameters are named: :name; times are UTC ISO text.

-- name: job_status.get
SELECT * FROM job_status WHERE job_id = :job_id;

-- name: job_status.with_id_prefix
SELECT job_id FROM job_status WHERE job_id >= :low AND job_id <= :high
ORDER BY job_id
LIMIT :limit;

-- name: job_status.list
SELECT * FROM job_status
WHERE (:status IS NULL OR status = :status)
  AND (:customer_id IS NULL OR customer_id = :customer_id)
  AND (:queue IS NULL OR queue = :queue)
ORDER BY enqueued_at, job_id
LIMIT :limit;

-- name: job_status.in_progress_before
SELECT * FROM job_status
WHERE status = 'in_progress' AND last_heartbeat_at < :before
ORDER BY last_heartbeat_at
LIMIT :limit;

-- name: job_status.due_scheduled
-- The scheduler's round (ADR 100): scheduled jobs due by now, oldest due first, from the
-- partial index job_status_scheduled_idx (no scan of the other jobs).
SELECT job_id, not_before FROM job_status
WHERE status = 'scheduled' AND not_before <= :now
ORDER BY not_before, job_id
LIMIT :limit;

-- name: job_status.due_scheduled_after
-- The next page of a round whose view lags behind its releases: after the last row read
-- (keyset on not_before, job_id), so jobs released a moment ago are not read again.
SELECT job_id, not_before FROM job_status
WHERE status = 'scheduled' AND not_before <= :now AND not_before >= :after_at
  AND (not_before, job_id) > (:after_at, :after_id)
ORDER BY not_before, job_id
LIMIT :limit;

-- name: job_status.dead_lettered
SELECT * FROM job_status
WHERE status = 'dead_lettered' AND (:customer_id IS NULL OR customer_id = :customer_id)
ORDER BY finished_at, job_id
LIMIT :limit;

-- name: job_status.count_dead_lettered
-- The dead letters' total up to a limit, from the partial index
-- job_status_dead_lettered_idx (the console says "more than" beyond it).
SELECT count(*) AS count FROM (
SELECT 1 FROM job_status WHERE status = 'dead_lettered' LIMIT :limit) AS dead;

-- name: dead_letter_alerts.of_oldest_dead_letters
-- The oldest dead letters (job_status.dead_lettered's order), each with the last status
-- of its alert: one query for the console's dead letters page (ADR 140).
SELECT j.*,
  (SELECT a.alert_status FROM dead_letter_alerts a WHERE a.job_id = j.job_id
   ORDER BY a.dead_letter_version DESC LIMIT 1) AS alert_status
FROM job_status j
WHERE j.status = 'dead_lettered'
ORDER BY j.finished_at, j.job_id
LIMIT :limit;

-- name: job_status.counts
SELECT status, count(*) AS count FROM job_status
WHERE (:customer_id IS NULL OR customer_id = :customer_id)
GROUP BY status ORDER BY status;

-- name: job_status.action_page
-- A bulk action's next batch (ADR 100): the jobs matching its filter after ``after`` in
-- id order (keyset pagination on the primary key).
SELECT * FROM job_status
WHERE (:after IS NULL OR job_id > :after)
  AND (:status IS NULL OR status = :status)
  AND (:customer_id IS NULL OR customer_id = :customer_id)
  AND (:queue IS NULL OR queue = :queue)
  AND (:since IS NULL OR enqueued_at >= :since)
  AND (:until IS NULL OR enqueued_at < :until)
  AND (:error_contains IS NULL OR instr(last_error, :error_contains) > 0)
ORDER BY job_id
LIMIT :limit;

-- name: job_status.action_count
SELECT count(*) AS count FROM job_status
WHERE (:status IS NULL OR status = :status)
  AND (:customer_id IS NULL OR customer_id = :customer_id)
  AND (:queue IS NULL OR queue = :queue)
  AND (:since IS NULL OR enqueued_at >= :since)
  AND (:until IS NULL OR enqueued_at < :until)
  AND (:error_contains IS NULL OR instr(last_error, :error_contains) > 0);

-- name: job_status.action_count_upto
-- How many jobs match, counted up to a limit (the console's jobs page: its work is bounded
-- by the limit, not by the number of jobs; the confirmation counts them all).
SELECT count(*) AS count FROM (
SELECT 1 FROM job_status
WHERE (:status IS NULL OR status = :status)
  AND (:customer_id IS NULL OR customer_id = :customer_id)
  AND (:queue IS NULL OR queue = :queue)
  AND (:since IS NULL OR enqueued_at >= :since)
  AND (:until IS NULL OR enqueued_at < :until)
  AND (:error_contains IS NULL OR instr(last_error, :error_contains) > 0)
LIMIT :limit) AS matching;

-- name: job_status.error_page
-- job_status.action_page with an error text (ADR 141): the jobs of the distinct texts
-- that hold it (error_texts, a scan of the texts, not of the jobs), through job_errors'
-- (error_id, job_id) index, after ``after`` in id order.
SELECT s.* FROM job_errors e JOIN job_status s ON s.job_id = e.job_id
WHERE e.error_id IN (SELECT t.error_id FROM error_texts t
                     WHERE instr(t.error_text, :error_contains) > 0)
  AND (:after IS NULL OR e.job_id > :after)
  AND (:status IS NULL OR s.status = :status)
  AND (:customer_id IS NULL OR s.customer_id = :customer_id)
  AND (:queue IS NULL OR s.queue = :queue)
  AND (:since IS NULL OR s.enqueued_at >= :since)
  AND (:until IS NULL OR s.enqueued_at < :until)
ORDER BY e.job_id
LIMIT :limit;

-- name: job_status.error_count_upto
-- job_status.action_count_upto with an error text (ADR 141).
SELECT count(*) AS count FROM (
SELECT 1 FROM job_errors e JOIN job_status s ON s.job_id = e.job_id
WHERE e.error_id IN (SELECT t.error_id FROM error_texts t
                     WHERE instr(t.error_text, :error_contains) > 0)
  AND (:status IS NULL OR s.status = :status)
  AND (:customer_id IS NULL OR s.customer_id = :customer_id)
  AND (:queue IS NULL OR s.queue = :queue)
  AND (:since IS NULL OR s.enqueued_at >= :since)
  AND (:until IS NULL OR s.enqueued_at < :until)
LIMIT :limit) AS matching;

-- name: queue_history.for_job
SELECT * FROM queue_history WHERE job_id = :job_id ORDER BY position;

-- name: queue_history.recent
SELECT * FROM queue_history
WHERE (:queue IS NULL OR queue = :queue)
  AND (:customer_id IS NULL OR customer_id = :customer_id)
ORDER BY position DESC
LIMIT :limit;

-- name: health.queues
SELECT * FROM health_queues ORDER BY queue;

-- name: health.daily
SELECT * FROM health_daily WHERE day = :day ORDER BY queue;

-- name: health.active_workers
SELECT queue, count(*) AS count FROM health_workers WHERE last_seen_at >= :since
GROUP BY queue ORDER BY queue;

-- name: health.active_workers_total
SELECT count(DISTINCT worker_id) AS workers FROM health_workers WHERE last_seen_at >= :since;

-- name: health.stale
SELECT queue, count(*) AS count FROM health_jobs
WHERE status = 'in_progress' AND last_heartbeat_at < :before
GROUP BY queue ORDER BY queue;

-- name: rate_limits.for_subject
SELECT * FROM rate_limit_counters
WHERE subject = :subject AND window_start >= :since ORDER BY window_start;

-- name: rate_limits.totals
SELECT subject, sum(enqueued) AS enqueued, sum(admitted) AS admitted, sum(refused) AS refused
FROM rate_limit_counters
WHERE window_start >= :since GROUP BY subject ORDER BY subject;

-- name: dead_letter_alerts.pending
SELECT * FROM dead_letter_alerts
WHERE alert_status = 'pending'
ORDER BY dead_lettered_at, job_id
LIMIT :limit;

-- name: dead_letter_alerts.for_job
SELECT * FROM dead_letter_alerts
WHERE job_id = :job_id
ORDER BY dead_letter_version;

-- name: dead_letter_alerts.counts
SELECT alert_status, count(*) AS count FROM dead_letter_alerts GROUP BY alert_status;

-- name: queue_controls.all
SELECT * FROM queue_controls ORDER BY queue;

-- name: dispatch_holds.hold
-- The dispatcher's writes below return a column so they run as named queries, in the
-- transaction that advances its tracking (adapters/service/dispatch_holds.py).
INSERT INTO dispatch_holds
    (job_id, queue_id, queue, customer_id, attempt, priority, dedup_key, position)
VALUES (:job_id, :queue_id, :queue, :customer_id, :attempt, :priority, :dedup_key, :position)
ON CONFLICT (job_id) DO UPDATE SET
    queue_id = excluded.queue_id, queue = excluded.queue, customer_id = excluded.customer_id,
    attempt = excluded.attempt, priority = excluded.priority, dedup_key = excluded.dedup_key,
    position = excluded.position
RETURNING job_id;

-- name: dispatch_holds.of_queue
SELECT * FROM dispatch_holds WHERE queue_id = :queue_id ORDER BY position, job_id;

-- name: dispatch_holds.release
DELETE FROM dispatch_holds WHERE job_id = :job_id AND dedup_key = :dedup_key RETURNING job_id;

-- name: schedules.all
SELECT * FROM schedules WHERE state <> 'removed' ORDER BY name;

-- name: schedules.due_from
-- The schedule tickers' round (ADR 130): active schedules due by now, from the partial
-- index schedules_due_idx (no scan of the others), from a random pivot id on, so tickers
-- running together mostly take different schedules.
SELECT * FROM schedules
WHERE state = 'active' AND next_tick <= :now AND schedule_id >= :pivot
ORDER BY schedule_id
LIMIT :limit;

-- name: schedules.due_before
SELECT * FROM schedules
WHERE state = 'active' AND next_tick <= :now AND schedule_id < :pivot
ORDER BY schedule_id
LIMIT :limit;

-- name: schedules.summary
SELECT count(*) AS count,
       coalesce(sum(CASE WHEN state = 'paused' THEN 1 ELSE 0 END), 0) AS paused,
       min(CASE WHEN state = 'active' THEN next_tick END) AS next_tick
FROM schedules WHERE state <> 'removed';

-- name: schedules.last_fired
SELECT last_tick, last_late FROM schedules
WHERE last_tick IS NOT NULL ORDER BY last_tick DESC LIMIT 1;

-- name: archive.summary
SELECT (SELECT count(*) FROM archive_segments) AS segments,
       (SELECT coalesce(sum(job_count), 0) FROM archive_segments) AS archived_jobs,
       (SELECT coalesce(sum(event_count), 0) FROM archive_segments) AS archived_events,
       (SELECT coalesce(sum(byte_count), 0) FROM archive_segments) AS archive_bytes,
       (SELECT coalesce(min(rowid), 0) FROM stored_events) AS oldest_hot_position,
       (SELECT coalesce(max(rowid), 0) FROM stored_events) AS head;

-- name: actions.unfinished
-- The bulk actions to resume at start-up (ADR 100), from actions_state_idx.
SELECT action_id FROM actions
WHERE state IN ('running', 'interrupted')
ORDER BY started_at, action_id;

-- name: outbox_positions.between
-- The events of a dispatcher's page whose queue row the outbox wrote (ADR 151).
SELECT position FROM outbox_positions
WHERE position > :after AND position <= :upto ORDER BY position;

-- name: outbox_positions.forget
-- In the transaction that advances the dispatcher past them.
DELETE FROM outbox_positions WHERE position <= :upto RETURNING position;
