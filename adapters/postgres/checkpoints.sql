-- Queries of the view checkpoints on PostgreSQL (ADR 90). Tables: migrations/0010.

-- name: write_chunk
INSERT INTO view_checkpoint_chunks (checkpoint_id, seq, data) VALUES (%(id)s, %(seq)s, %(data)s);

-- name: publish
INSERT INTO view_checkpoints
    (id, view_name, position, generation, taken_at, row_count, byte_count, sha256,
     format_version)
VALUES (%(id)s, %(view)s, %(position)s, %(generation)s, %(taken_at)s, %(row_count)s, %(byte_count)s, %(sha256)s,
        %(format_version)s);

-- name: list
SELECT id, view_name, position, generation, taken_at, row_count, byte_count, sha256,
       format_version
FROM view_checkpoints WHERE view_name = %(view)s ORDER BY position DESC, taken_at DESC;

-- name: chunks
SELECT data FROM view_checkpoint_chunks WHERE checkpoint_id = %(id)s ORDER BY seq;

-- name: delete_chunks
DELETE FROM view_checkpoint_chunks WHERE checkpoint_id = %(id)s;

-- name: delete
DELETE FROM view_checkpoints WHERE id = %(id)s;

-- name: delete_orphans
DELETE FROM view_checkpoint_chunks
WHERE checkpoint_id NOT IN (SELECT id FROM view_checkpoints);
