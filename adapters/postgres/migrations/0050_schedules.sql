-- 0050: the schedules view (issue 18: cron schedules that fire exactly once, ADR 130).

CREATE TABLE schedules (
    schedule_id uuid NOT NULL,
    name text NOT NULL,
    cron text NOT NULL,
    timezone text NOT NULL,
    queue text NOT NULL,
    customer_id text NOT NULL,
    payload text NOT NULL,
    missed text NOT NULL,
    priority bigint NOT NULL,
    max_attempts bigint NOT NULL,
    state text NOT NULL,
    next_tick timestamptz,
    last_tick timestamptz,
    last_late double precision,
    last_fired_by text,
    ticks bigint NOT NULL,
    changed_by text NOT NULL,
    changed_reason text,
    changed_at timestamptz NOT NULL,
    CONSTRAINT schedules_pkey PRIMARY KEY (schedule_id)
);
CREATE INDEX schedules_due_idx ON schedules (next_tick) WHERE state = 'active';
