-- 0051: the schedules view keeps the version of the schedule each row folds (ADR 130), so
-- a ticker decides on the row and the schedule's optimistic concurrency checks it.

ALTER TABLE schedules ADD COLUMN version bigint;
