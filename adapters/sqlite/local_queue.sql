-- The local queue's statements on SQLite, by name (adapters/sqlite/local_queue.py).
-- Parameters are named (:name); times are epoch seconds. Writes run inside BEGIN IMMEDIATE,
-- which serialises receivers (SQLite has one writer at a time).

-- name: insert
INSERT INTO local_queue_messages (queue_name, message_id, job_id, attempt, body, sent_at, visible_at, job_queue, priority)
VALUES (:queue, :message_id, :job_id, :attempt, :body, :sent_at, :visible_at, :job_queue, :priority);

-- name: claim
-- The visible messages, highest priority first, then the oldest (migration 0030's
-- index walks them in this order): those received max_receives times already move to the
-- dead-letter queue, the others are handed out with a new receipt.
UPDATE local_queue_messages SET
    receive_count = CASE WHEN receive_count >= :max_receives THEN receive_count ELSE receive_count + 1 END,
    dead_at = CASE WHEN receive_count >= :max_receives THEN :now END,
    receipt = CASE WHEN receive_count >= :max_receives THEN NULL ELSE lower(hex(randomblob(16))) END,
    visible_at = CASE WHEN receive_count >= :max_receives THEN visible_at ELSE :visible_until END
WHERE seq IN (
    SELECT seq FROM local_queue_messages
    WHERE queue_name = :queue AND dead_at IS NULL AND visible_at <= :now
    ORDER BY priority DESC, visible_at, seq
    LIMIT :limit
)
RETURNING seq, message_id, job_id, attempt, body, sent_at, receive_count, receipt, dead_at, priority;

-- name: claim_queues
-- As claim, of the messages of some logical queues only (:job_queues, a JSON array):
-- the others are neither received nor counted.
-- The visible messages, highest priority first, then the oldest (migration 0030's
-- index walks them in this order): those received max_receives times already move to the
-- dead-letter queue, the others are handed out with a new receipt.
UPDATE local_queue_messages SET
    receive_count = CASE WHEN receive_count >= :max_receives THEN receive_count ELSE receive_count + 1 END,
    dead_at = CASE WHEN receive_count >= :max_receives THEN :now END,
    receipt = CASE WHEN receive_count >= :max_receives THEN NULL ELSE lower(hex(randomblob(16))) END,
    visible_at = CASE WHEN receive_count >= :max_receives THEN visible_at ELSE :visible_until END
WHERE seq IN (
    SELECT seq FROM local_queue_messages
    WHERE queue_name = :queue AND dead_at IS NULL AND visible_at <= :now
      AND job_queue IN (SELECT value FROM json_each(:job_queues))
    ORDER BY priority DESC, visible_at, seq
    LIMIT :limit
)
RETURNING seq, message_id, job_id, attempt, body, sent_at, receive_count, receipt, dead_at, priority;

-- name: set_visibility
UPDATE local_queue_messages SET visible_at = :visible_at
WHERE seq = :seq AND queue_name = :queue AND receipt = :receipt AND dead_at IS NULL;

-- name: hand_back
-- A receive no handler attempted, undone: visible again, receive count back, receipt spent.
UPDATE local_queue_messages
SET visible_at = :visible_at, receive_count = max(receive_count - 1, 0), receipt = NULL
WHERE seq = :seq AND queue_name = :queue AND receipt = :receipt AND dead_at IS NULL;

-- name: delete
DELETE FROM local_queue_messages
WHERE seq = :seq AND queue_name = :queue AND receipt = :receipt AND dead_at IS NULL;

-- name: dead_letters
SELECT seq, message_id, job_id, attempt, body, sent_at, receive_count, receipt, dead_at
FROM local_queue_messages
WHERE queue_name = :queue AND dead_at IS NOT NULL
ORDER BY dead_at, seq
LIMIT :limit;

-- name: delete_dead
DELETE FROM local_queue_messages WHERE seq = :seq AND queue_name = :queue AND dead_at IS NOT NULL;

-- name: revive
UPDATE local_queue_messages SET dead_at = NULL, receive_count = 0, receipt = NULL, visible_at = :now
WHERE queue_name = :queue AND dead_at IS NOT NULL
  AND message_id IN (SELECT value FROM json_each(:message_ids))
RETURNING seq, message_id, job_id, attempt, body, sent_at, receive_count, receipt, dead_at;
