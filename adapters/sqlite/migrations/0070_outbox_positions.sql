-- 0070: the local queue's transactional outbox (issue 19, ADR 151): the positions of the
-- events whose queue row was written in their own transaction (written on PostgreSQL only;
-- on SQLite the dispatcher sends every message from the log and finds none here).

CREATE TABLE outbox_positions (
    position INTEGER NOT NULL PRIMARY KEY
);
