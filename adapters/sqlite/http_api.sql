-- Queries of the HTTP API's tables on SQLite (rate-limit windows and API keys).
-- Tables: migrations/0005_http_api.sql.

-- name: hit
-- One (bucket, window) of a batch; the batch runs in one BEGIN IMMEDIATE transaction.
-- SET expressions read the row as it was, RETURNING the row as it is now.
INSERT INTO rate_limit_windows
    (bucket, window_start, window_end, limit_value, hits, admitted, last_admitted)
VALUES (:bucket, :start, :end, :lim, :n, min(:n, :lim), min(:n, :lim))
ON CONFLICT (bucket, window_start) DO UPDATE SET
    limit_value = excluded.limit_value,
    hits = hits + excluded.hits,
    admitted = max(admitted, min(admitted + excluded.hits, excluded.limit_value)),
    last_admitted = max(admitted, min(admitted + excluded.hits, excluded.limit_value)) - admitted
RETURNING admitted, last_admitted;

-- name: cleanup
DELETE FROM rate_limit_windows WHERE window_end < :now;

-- name: ping
SELECT count(*) FROM rate_limit_windows WHERE 0;

-- name: add_key
INSERT INTO api_keys (key_id, key_hash, role, customer_id, label, created_at, revoked_at)
VALUES (:key_id, :key_hash, :role, :customer_id, :label, :created_at, :revoked_at);

-- name: get_key
SELECT key_id, key_hash, role, customer_id, label, created_at, revoked_at
FROM api_keys WHERE key_id = :key_id;

-- name: list_keys
SELECT key_id, key_hash, role, customer_id, label, created_at, revoked_at
FROM api_keys ORDER BY created_at, key_id;

-- name: revoke_key
UPDATE api_keys SET revoked_at = coalesce(revoked_at, :now) WHERE key_id = :key_id
RETURNING key_id, key_hash, role, customer_id, label, created_at, revoked_at;

-- name: any_active_key
SELECT EXISTS (SELECT 1 FROM api_keys WHERE revoked_at IS NULL) AS any_active;
