-- 0007: each local queue message names its logical queue (the job's queue), so a worker
-- for some queues claims only their messages and never counts a receive against another
-- queue's message (issue 13, docs/adr/0070-one-logical-queue-per-receive.md). Messages
-- already queued take the queue their body names.

ALTER TABLE local_queue_messages ADD COLUMN job_queue text NOT NULL DEFAULT 'default';
UPDATE local_queue_messages
SET job_queue = COALESCE(substring(body FROM '"queue":"([^"\\]*)"'), 'default');
CREATE INDEX local_queue_messages_job_queue_ready_idx ON local_queue_messages (queue_name, job_queue, visible_at, seq) WHERE dead_at IS NULL;
