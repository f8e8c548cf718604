-- 0010: view checkpoints (issue 16, ADR 90): a copy of one view's tables at one log
-- position, as zstd-compressed MessagePack chunks, trusted only if they hash to sha256.

CREATE TABLE view_checkpoints (
    id TEXT NOT NULL PRIMARY KEY,
    view_name TEXT NOT NULL,
    position INTEGER NOT NULL,
    generation INTEGER NOT NULL,
    taken_at TEXT NOT NULL,
    row_count INTEGER NOT NULL,
    byte_count INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    format_version TEXT NOT NULL
);
CREATE INDEX view_checkpoints_view_position_idx ON view_checkpoints (view_name, position);

CREATE TABLE view_checkpoint_chunks (
    checkpoint_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (checkpoint_id, seq)
);
