-- 0005: the HTTP API's rate-limit windows and API keys (issue 5).

-- The limiter's live counters: one row per bucket (preset and subject) and fixed window.
CREATE TABLE rate_limit_windows (
    bucket text NOT NULL,
    window_start integer NOT NULL,
    window_end integer NOT NULL,
    limit_value integer NOT NULL,
    hits integer NOT NULL,
    admitted integer NOT NULL,
    last_admitted integer NOT NULL,
    CONSTRAINT rate_limit_windows_pkey PRIMARY KEY (bucket, window_start)
);
CREATE INDEX rate_limit_windows_end_idx ON rate_limit_windows (window_end);

-- API keys, stored as the SHA-256 of the key (docs/adr/0032).
CREATE TABLE api_keys (
    key_id text NOT NULL,
    key_hash text NOT NULL,
    role text NOT NULL,
    customer_id text,
    label text,
    created_at text NOT NULL,
    revoked_at text,
    CONSTRAINT api_keys_pkey PRIMARY KEY (key_id),
    CONSTRAINT api_keys_role_check CHECK (role IN ('worker', 'service', 'staff', 'admin'))
);
