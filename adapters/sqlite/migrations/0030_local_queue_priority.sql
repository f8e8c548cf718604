-- 0030: each local queue message carries its job's priority (issue 14, ADR 100): a claim
-- hands out the highest priority first, the oldest visible first within a priority. The
-- ready indexes are rebuilt in that order, so a claim walks one index and stops at its
-- LIMIT. Messages already queued have priority 0.

ALTER TABLE local_queue_messages ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
DROP INDEX local_queue_messages_ready_idx;
DROP INDEX local_queue_messages_job_queue_ready_idx;
CREATE INDEX local_queue_messages_ready_idx ON local_queue_messages (queue_name, priority DESC, visible_at, seq) WHERE dead_at IS NULL;
CREATE INDEX local_queue_messages_job_queue_ready_idx ON local_queue_messages (queue_name, job_queue, priority DESC, visible_at, seq) WHERE dead_at IS NULL;
