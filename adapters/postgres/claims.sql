-- Claims in one round trip on the local queue (adapters/postgres/claims.py, ADR 155).
-- Every statement runs inside the claim's (or the reports') transaction on the ledger's
-- database, beside the append of the Claimed (or Completed) events.
-- Apart from the candidates, every statement finds its rows by the primary key: the queue
-- and dead-letter checks are spelled with IS NOT DISTINCT FROM so that no ready index
-- matches them (the table's statistics always say it is empty, and with `queue_name = ...
-- AND dead_at IS NULL` the planner walked a ready index through every waiting message;
-- tests/integration/test_claims_cost.py).

-- name: candidates
-- The visible messages, highest priority first, then the oldest (migration 0030's
-- index), of some logical queues or all, of one customer or all, each taken with a
-- transaction-level advisory lock tried in that order (a row another claim holds is
-- skipped, as SKIP LOCKED would). No row is written, so the transaction has no id yet
-- and its append orders itself without the table lock (ADR 150); the window is read
-- first and the locks tried on it in order, so only the rows returned are locked.
-- Each row also carries the stored versions of the queue aggregates the process watches
-- (the queue names and ids given) that the rows' jobs belong to (NULL for one never
-- controlled), read in this transaction, so that the batch's decisions look none up (ADR
-- 202). The rows taken also carry their jobs' streams (ADR 208): the latest snapshot and
-- the events after it, each an index lookup, what select_streams read in a round trip of
-- its own. The tables are the recorder's ({events}, {snapshots}, composed with
-- sql.Identifier).
WITH due AS MATERIALIZED (
    SELECT seq, message_id::text, job_id::text, attempt, body, sent_at, receive_count, receipt, dead_at, priority, job_queue, job_id AS job_uuid
    FROM local_queue_messages
    WHERE queue_name = %(queue)s AND dead_at IS NULL AND visible_at <= %(now)s
      AND (%(any_queue)s OR job_queue = ANY(%(job_queues)s::text[]))
      AND (%(customer)s::text IS NULL OR (body::jsonb ->> 'customer_id') = %(customer)s::text)
    ORDER BY priority DESC, visible_at, seq
    LIMIT %(window)s
)
, versions AS MATERIALIZED (
    SELECT coalesce(array_agg(w.id), '{{}}') AS queue_ids,
           coalesce(array_agg((SELECT max(e.originator_version) FROM {events} AS e
                               WHERE e.originator_id = w.id)), '{{}}') AS queue_versions
    FROM unnest(%(queue_names)s::text[], %(queue_ids)s::uuid[]) AS w(name, id)
    WHERE w.name IN (SELECT job_queue FROM due)
)
, taken AS MATERIALIZED (
    SELECT due.*, versions.queue_ids, versions.queue_versions
    FROM due CROSS JOIN versions
    WHERE pg_try_advisory_xact_lock(%(lock)s, (seq %% 2147483647)::integer)
    LIMIT %(limit)s
)
SELECT t.seq, t.message_id, t.job_id, t.attempt, t.body, t.sent_at, t.receive_count,
       t.receipt, t.dead_at, t.priority, t.queue_ids, t.queue_versions,
       snap.originator_version, snap.topic, snap.state, ev.versions, ev.topics, ev.states
FROM taken AS t
LEFT JOIN LATERAL (
    SELECT s.originator_version, s.topic, s.state FROM {snapshots} AS s
    WHERE s.originator_id = t.job_uuid ORDER BY s.originator_version DESC LIMIT 1
) AS snap ON true
CROSS JOIN LATERAL (
    SELECT array_agg(e.originator_version ORDER BY e.originator_version) AS versions,
           array_agg(e.topic ORDER BY e.originator_version) AS topics,
           array_agg(e.state ORDER BY e.originator_version) AS states
    FROM {events} AS e
    WHERE e.originator_id = t.job_uuid
      AND e.originator_version > coalesce(snap.originator_version, 0)
) AS ev;

-- name: receive
-- The claimed messages received, after the append: receive count + 1, a new receipt,
-- invisible until visible_until; those received max_receives times already move to the
-- dead-letter queue. A row a receiver without the advisory lock took meanwhile is left
-- alone (its claim will be refused and its message deleted).
UPDATE local_queue_messages AS m SET
    receive_count = CASE WHEN m.receive_count >= %(max_receives)s THEN m.receive_count ELSE m.receive_count + 1 END,
    dead_at = CASE WHEN m.receive_count >= %(max_receives)s THEN %(now)s END,
    receipt = CASE WHEN m.receive_count >= %(max_receives)s THEN NULL ELSE gen_random_uuid()::text END,
    visible_at = CASE WHEN m.receive_count >= %(max_receives)s THEN m.visible_at ELSE %(visible_until)s END
WHERE m.seq = ANY(%(seqs)s::bigint[])
  AND (m.queue_name, m.dead_at) IS NOT DISTINCT FROM (%(queue)s, NULL::double precision)
  AND m.visible_at <= %(now)s
RETURNING m.seq, m.receipt, m.receive_count, m.dead_at;

-- name: hand_back
-- Refused claims: visible again after their delay; never received, so not counted
-- (ADR 88).
UPDATE local_queue_messages AS m
SET visible_at = h.visible_at
FROM unnest(%(seqs)s::bigint[], %(visible_at)s::double precision[]) AS h(seq, visible_at)
WHERE m.seq = h.seq
  AND (m.queue_name, m.dead_at) IS NOT DISTINCT FROM (%(queue)s, NULL::double precision);

-- name: delete_obsolete
-- Messages whose claim was refused as obsolete (the job is not pending or not found).
DELETE FROM local_queue_messages
WHERE seq = ANY(%(seqs)s::bigint[])
  AND (queue_name, dead_at) IS NOT DISTINCT FROM (%(queue)s, NULL::double precision);

-- name: delete
-- Messages whose job needs no more wake-up (claim refused as obsolete, or reported),
-- guarded by their receipt; returns the rows deleted.
DELETE FROM local_queue_messages AS m
USING unnest(%(seqs)s::bigint[], %(receipts)s::text[]) AS d(seq, receipt)
WHERE m.seq = d.seq AND m.receipt = d.receipt
  AND (m.queue_name, m.dead_at) IS NOT DISTINCT FROM (%(queue)s, NULL::double precision)
RETURNING m.seq;
