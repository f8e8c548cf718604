-- 0039: the actions view (issue 14, ADR 100: the bulk actions to resume at start-up, found by state).

CREATE TABLE actions (
    action_id uuid NOT NULL,
    kind text NOT NULL,
    state text NOT NULL,
    total bigint NOT NULL,
    done bigint NOT NULL,
    acted bigint NOT NULL,
    actor text NOT NULL,
    reason text,
    error text,
    started_at timestamptz NOT NULL,
    finished_at timestamptz,
    updated_at timestamptz NOT NULL,
    CONSTRAINT actions_pkey PRIMARY KEY (action_id)
);
CREATE INDEX actions_state_idx ON actions (state, started_at, action_id);
