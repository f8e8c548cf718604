-- 0020: operator controls (issue 14, ADR 100): job_status gains priority and
-- cancel_requested and a partial index for the scheduler (scheduled rows by not_before);
-- health_queues counts scheduled and cancelled jobs, health_daily cancellations. Existing
-- jobs get priority 0 and no cancel requested (the defaults are dropped after, as the
-- declaration has none). A job requeued with a retry delay is scheduled from now on
-- (ADR 100): its rows say so.

ALTER TABLE job_status ADD COLUMN priority bigint NOT NULL DEFAULT 0;
ALTER TABLE job_status ADD COLUMN cancel_requested bigint NOT NULL DEFAULT 0;
ALTER TABLE job_status ALTER COLUMN priority DROP DEFAULT;
ALTER TABLE job_status ALTER COLUMN cancel_requested DROP DEFAULT;
CREATE INDEX job_status_scheduled_idx ON job_status (not_before) WHERE status = 'scheduled';

ALTER TABLE health_queues ADD COLUMN scheduled bigint NOT NULL DEFAULT 0;
ALTER TABLE health_queues ADD COLUMN cancelled bigint NOT NULL DEFAULT 0;
ALTER TABLE health_daily ADD COLUMN cancelled bigint NOT NULL DEFAULT 0;

UPDATE job_status SET status = 'scheduled' WHERE status = 'pending' AND not_before IS NOT NULL;
UPDATE health_jobs SET status = 'scheduled'
WHERE status = 'pending' AND job_id IN (SELECT job_id FROM job_status WHERE status = 'scheduled');
UPDATE health_queues q SET pending = q.pending - s.n, scheduled = s.n
FROM (SELECT queue, count(*) AS n FROM health_jobs WHERE status = 'scheduled' GROUP BY queue) s
WHERE q.queue = s.queue;
