-- 0060: the health_minutes view (issue 15: the console's per-minute charts, ADR 140).

CREATE TABLE health_minutes (
    minute timestamptz NOT NULL,
    enqueued bigint NOT NULL DEFAULT 0,
    completed bigint NOT NULL DEFAULT 0,
    failed bigint NOT NULL DEFAULT 0,
    dead_lettered bigint NOT NULL DEFAULT 0,
    stale bigint NOT NULL DEFAULT 0,
    CONSTRAINT health_minutes_pkey PRIMARY KEY (minute)
);
