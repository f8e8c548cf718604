-- 0045: the archive's deleted rows are reclaimed by autovacuum (issue 17, ADR 111).
-- eventsourcing creates the events and snapshots tables with an autovacuum threshold of
-- 100 million dead rows (they were append-only); an archive deletes rows, so these lower
-- it: a table is vacuumed once 10,000 + 5% of its rows are dead, in the background,
-- instead of by a VACUUM inside the archive. eventsourcing's tables exist when the
-- ledger migrates (it creates them first); a database migrated without them is skipped.

DO $$ BEGIN IF to_regclass('jobledger_events') IS NOT NULL THEN ALTER TABLE jobledger_events SET (autovacuum_vacuum_threshold = 10000, autovacuum_vacuum_scale_factor = 0.05) ; END IF ; IF to_regclass('jobledger_snapshots') IS NOT NULL THEN ALTER TABLE jobledger_snapshots SET (autovacuum_vacuum_threshold = 10000, autovacuum_vacuum_scale_factor = 0.05) ; END IF ; END $$;
