-- Queries of the HTTP API's tables on PostgreSQL (rate-limit windows and API keys).
-- Tables: migrations/0005_http_api.sql.

-- name: hit
-- Count a batch of hits, one row per (bucket, window), in one atomic statement: each
-- window admits hits up to its limit and says how many of these it admitted. The rows
-- arrive sorted, so concurrent batches lock windows in the same order (no deadlock).
INSERT INTO rate_limit_windows AS w
    (bucket, window_start, window_end, limit_value, hits, admitted, last_admitted)
SELECT r.bucket, r.window_start, r.window_end, r.lim, r.n, LEAST(r.n, r.lim), LEAST(r.n, r.lim)
FROM unnest(
    %(buckets)s::text[], %(starts)s::bigint[], %(ends)s::bigint[],
    %(limits)s::integer[], %(counts)s::integer[]
) WITH ORDINALITY AS r (bucket, window_start, window_end, lim, n, ord)
ORDER BY r.ord
ON CONFLICT (bucket, window_start) DO UPDATE SET
    limit_value = EXCLUDED.limit_value,
    hits = w.hits + EXCLUDED.hits,
    admitted = GREATEST(w.admitted, LEAST(w.admitted + EXCLUDED.hits, EXCLUDED.limit_value)),
    last_admitted =
        GREATEST(w.admitted, LEAST(w.admitted + EXCLUDED.hits, EXCLUDED.limit_value))
        - w.admitted
RETURNING bucket, window_start, admitted, last_admitted;

-- name: cleanup
DELETE FROM rate_limit_windows WHERE window_end < %(now)s;

-- name: ping
SELECT 1;

-- name: add_key
INSERT INTO api_keys (key_id, key_hash, role, customer_id, label, created_at, revoked_at)
VALUES (%(key_id)s, %(key_hash)s, %(role)s, %(customer_id)s, %(label)s, %(created_at)s,
        %(revoked_at)s);

-- name: get_key
SELECT key_id, key_hash, role, customer_id, label, created_at, revoked_at
FROM api_keys WHERE key_id = %(key_id)s;

-- name: list_keys
SELECT key_id, key_hash, role, customer_id, label, created_at, revoked_at
FROM api_keys ORDER BY created_at, key_id;

-- name: revoke_key
UPDATE api_keys SET revoked_at = coalesce(revoked_at, %(now)s) WHERE key_id = %(key_id)s
RETURNING key_id, key_hash, role, customer_id, label, created_at, revoked_at;

-- name: any_active_key
SELECT EXISTS (SELECT 1 FROM api_keys WHERE revoked_at IS NULL) AS any_active;
