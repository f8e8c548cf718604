-- Claims in one round trip on the local queue (adapters/postgres/claims.py, ADR 155).
-- Every statement runs inside the claim's (or the reports') transaction on the ledger's
-- database, beside the append of the Claimed (or Completed) events.

-- name: receive
-- The visible messages, highest priority first, then the oldest (migration 0030's
-- index), of some logical queues or all, of one customer or all: those received
-- max_receives times already move to the dead-letter queue, the others are received
-- (a new receipt, invisible until visible_until), as the local queue's own claim.
WITH due AS (
    SELECT seq FROM local_queue_messages
    WHERE queue_name = %(queue)s AND dead_at IS NULL AND visible_at <= %(now)s
      AND (%(any_queue)s OR job_queue = ANY(%(job_queues)s::text[]))
      AND (%(customer)s::text IS NULL OR (body::jsonb ->> 'customer_id') = %(customer)s::text)
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

-- name: hand_back
-- Refused claims, undone in the same transaction: visible again after their delay,
-- receive count back (ADR 88), receipt spent.
UPDATE local_queue_messages AS m
SET visible_at = h.visible_at, receive_count = greatest(m.receive_count - 1, 0), receipt = NULL
FROM unnest(%(seqs)s::bigint[], %(visible_at)s::double precision[]) AS h(seq, visible_at)
WHERE m.seq = h.seq AND m.queue_name = %(queue)s;

-- name: delete
-- Messages whose job needs no more wake-up (claim refused as obsolete, or reported),
-- guarded by their receipt; returns the rows deleted.
DELETE FROM local_queue_messages AS m
USING unnest(%(seqs)s::bigint[], %(receipts)s::text[]) AS d(seq, receipt)
WHERE m.seq = d.seq AND m.queue_name = %(queue)s AND m.receipt = d.receipt AND m.dead_at IS NULL
RETURNING m.seq;
