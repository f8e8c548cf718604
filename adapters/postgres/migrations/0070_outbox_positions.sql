-- 0070: the local queue's transactional outbox (issue 19, ADR 151): the positions of the
-- events whose queue row was written in their own transaction; the dispatcher skips them
-- and deletes the positions it passed.

CREATE TABLE outbox_positions (
    position bigint NOT NULL,
    CONSTRAINT outbox_positions_pkey PRIMARY KEY (position)
);
