-- 0065: the jobs that have an error text, in id order (issue 15: the console's jobs page
-- filtered by error text reads these rows, not every job; ADR 140).

CREATE INDEX IF NOT EXISTS job_status_errors_idx ON job_status (job_id) WHERE last_error IS NOT NULL;
