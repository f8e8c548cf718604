-- The local queue's statements on PostgreSQL, by name (adapters/postgres/local_queue.py).
-- Parameters are named (%(name)s); times are epoch seconds. Receivers lock the rows they
-- take with FOR UPDATE SKIP LOCKED, so concurrent receivers never wait for, nor get, the
-- same message.

-- name: insert
-- Every message of a send in one statement, from one array per column.
INSERT INTO local_queue_messages (queue_name, message_id, job_id, attempt, body, sent_at, visible_at, job_queue, priority)
SELECT %(queue)s, * FROM unnest(
    %(message_id)s::uuid[], %(job_id)s::uuid[], %(attempt)s::integer[], %(body)s::text[],
    %(sent_at)s::double precision[], %(visible_at)s::double precision[], %(job_queue)s::text[],
    %(priority)s::integer[]
);

-- name: claim
-- The visible messages, highest priority first, then the oldest (migration 0030's
-- index walks them in this order): those received max_receives times already move to the
-- dead-letter queue, the others are handed out with a new receipt.
WITH due AS (
    SELECT seq FROM local_queue_messages
    WHERE queue_name = %(queue)s AND dead_at IS NULL AND visible_at <= %(now)s
    ORDER BY priority DESC, visible_at, seq
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE local_queue_messages AS m SET
    receive_count = CASE WHEN m.receive_count >= %(max_receives)s THEN m.receive_count ELSE m.receive_count + 1 END,
    dead_at = CASE WHEN m.receive_count >= %(max_receives)s THEN %(now)s END,
    receipt = CASE WHEN m.receive_count >= %(max_receives)s THEN NULL ELSE gen_random_uuid()::text END,
    visible_at = CASE WHEN m.receive_count >= %(max_receives)s THEN m.visible_at ELSE %(visible_until)s END
FROM due
WHERE m.seq = due.seq
RETURNING m.seq, m.message_id::text, m.job_id::text, m.attempt, m.body, m.sent_at, m.receive_count, m.receipt, m.dead_at, m.priority;

-- name: claim_queues
-- As claim, of the messages of some logical queues only (%(job_queues)s): the others
-- are neither received nor counted.
-- The visible messages, highest priority first, then the oldest (migration 0030's
-- index walks them in this order): those received max_receives times already move to the
-- dead-letter queue, the others are handed out with a new receipt.
WITH due AS (
    SELECT seq FROM local_queue_messages
    WHERE queue_name = %(queue)s AND dead_at IS NULL AND visible_at <= %(now)s
      AND job_queue = ANY(%(job_queues)s::text[])
    ORDER BY priority DESC, visible_at, seq
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE local_queue_messages AS m SET
    receive_count = CASE WHEN m.receive_count >= %(max_receives)s THEN m.receive_count ELSE m.receive_count + 1 END,
    dead_at = CASE WHEN m.receive_count >= %(max_receives)s THEN %(now)s END,
    receipt = CASE WHEN m.receive_count >= %(max_receives)s THEN NULL ELSE gen_random_uuid()::text END,
    visible_at = CASE WHEN m.receive_count >= %(max_receives)s THEN m.visible_at ELSE %(visible_until)s END
FROM due
WHERE m.seq = due.seq
RETURNING m.seq, m.message_id::text, m.job_id::text, m.attempt, m.body, m.sent_at, m.receive_count, m.receipt, m.dead_at, m.priority;

-- name: set_visibility
UPDATE local_queue_messages SET visible_at = %(visible_at)s
WHERE seq = %(seq)s AND queue_name = %(queue)s AND receipt = %(receipt)s AND dead_at IS NULL;

-- name: hand_back
-- A receive no handler attempted, undone: visible again, receive count back, receipt spent.
UPDATE local_queue_messages
SET visible_at = %(visible_at)s, receive_count = greatest(receive_count - 1, 0), receipt = NULL
WHERE seq = %(seq)s AND queue_name = %(queue)s AND receipt = %(receipt)s AND dead_at IS NULL;

-- name: delete_many
-- Several deletes at once (concurrent jobs finishing together); returns the rows deleted.
-- Each (seq, receipt) is looked up by the primary key, one by one (LATERAL). Written as a
-- join on queue_name and dead_at IS NULL, the planner (whose statistics of this table are
-- always stale: it empties and fills in seconds) walked every waiting message of the
-- queue through a ready index for each delete, 10,000 entries in a burn-down; the queue
-- and dead-letter checks are spelled with IS NOT DISTINCT FROM so that no ready index
-- matches them. The outer WHERE repeats the receipt and dead_at checks, which PostgreSQL
-- re-checks on a row another transaction changed meanwhile (a receive after the timeout).
DELETE FROM local_queue_messages AS m
WHERE m.seq = ANY(ARRAY(
    SELECT found.seq FROM unnest(%(seqs)s::bigint[], %(receipts)s::text[]) AS d(seq, receipt)
    CROSS JOIN LATERAL (
        SELECT q.seq FROM local_queue_messages AS q
        WHERE q.seq = d.seq AND q.receipt = d.receipt
          AND (q.queue_name, q.dead_at) IS NOT DISTINCT FROM (%(queue)s, NULL::double precision)
    ) AS found
))
  AND m.receipt = ANY(%(receipts)s::text[])
  AND m.dead_at IS NOT DISTINCT FROM NULL::double precision
RETURNING m.seq;

-- name: dead_letters
SELECT seq, message_id::text, job_id::text, attempt, body, sent_at, receive_count, receipt, dead_at
FROM local_queue_messages
WHERE queue_name = %(queue)s AND dead_at IS NOT NULL
ORDER BY dead_at, seq
LIMIT %(limit)s;

-- name: delete_dead
DELETE FROM local_queue_messages WHERE seq = %(seq)s AND queue_name = %(queue)s AND dead_at IS NOT NULL;

-- name: revive
UPDATE local_queue_messages AS m SET dead_at = NULL, receive_count = 0, receipt = NULL, visible_at = %(now)s
FROM (
    SELECT seq FROM local_queue_messages
    WHERE queue_name = %(queue)s AND dead_at IS NOT NULL AND message_id = ANY(%(message_ids)s::uuid[])
    FOR UPDATE SKIP LOCKED
) AS dead
WHERE m.seq = dead.seq
RETURNING m.seq, m.message_id::text, m.job_id::text, m.attempt, m.body, m.sent_at, m.receive_count, m.receipt, m.dead_at;
