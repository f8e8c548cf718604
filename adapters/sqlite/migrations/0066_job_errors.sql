-- 0066: the error texts of job_status as an index (issue 15, ADR 141): each erring job's
-- text id (the first 128 bits of the text's SHA-256, in hex; ledger_error_id is
-- projections.job_errors.error_id, registered by the migration) and the distinct texts,
-- so the console's error-text filter scans the texts, not every erring job. Existing
-- rows are indexed here, as the job_status view's fold does from now on.

CREATE TABLE "job_errors" (
    "job_id" TEXT NOT NULL PRIMARY KEY,
    "error_id" TEXT NOT NULL
);
CREATE INDEX "job_errors_error_idx" ON "job_errors" ("error_id", "job_id");

CREATE TABLE "error_texts" (
    "error_id" TEXT NOT NULL PRIMARY KEY,
    "error_text" TEXT NOT NULL
);

INSERT INTO job_errors (job_id, error_id)
SELECT job_id, ledger_error_id(last_error) FROM job_status WHERE last_error IS NOT NULL;

INSERT OR IGNORE INTO error_texts (error_id, error_text)
SELECT e.error_id, j.last_error
FROM job_errors e JOIN job_status j ON j.job_id = e.job_id;
