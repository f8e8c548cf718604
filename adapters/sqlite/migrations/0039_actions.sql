-- 0039: the actions view (issue 14, ADR 100: the bulk actions to resume at start-up, found by state).

CREATE TABLE actions (
    action_id TEXT NOT NULL PRIMARY KEY,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    total INTEGER NOT NULL,
    done INTEGER NOT NULL,
    acted INTEGER NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT,
    error TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    updated_at TEXT NOT NULL
);
CREATE INDEX actions_state_idx ON actions (state, started_at, action_id);
