-- 0066: the error texts of job_status as an index (issue 15, ADR 141): each erring job's
-- text id (the first 128 bits of the text's SHA-256, in hex) and the distinct texts, so
-- the console's error-text filter scans the texts, not every erring job. Existing rows
-- are indexed here, as the job_status view's fold does from now on.

CREATE TABLE job_errors (
    job_id uuid NOT NULL,
    error_id text NOT NULL,
    CONSTRAINT job_errors_pkey PRIMARY KEY (job_id)
);
CREATE INDEX job_errors_error_idx ON job_errors (error_id, job_id);

CREATE TABLE error_texts (
    error_id text NOT NULL,
    error_text text NOT NULL,
    CONSTRAINT error_texts_pkey PRIMARY KEY (error_id)
);

INSERT INTO job_errors (job_id, error_id)
SELECT job_id, left(encode(sha256(convert_to(last_error, 'UTF8')), 'hex'), 32)
FROM job_status WHERE last_error IS NOT NULL;

INSERT INTO error_texts (error_id, error_text)
SELECT DISTINCT ON (e.error_id) e.error_id, j.last_error
FROM job_errors e JOIN job_status j USING (job_id)
ORDER BY e.error_id;
