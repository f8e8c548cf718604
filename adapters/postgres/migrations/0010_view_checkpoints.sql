-- 0010: view checkpoints (issue 16, ADR 90): a copy of one view's tables at one log
-- position, as zstd-compressed MessagePack chunks, trusted only if they hash to sha256.

CREATE TABLE view_checkpoints (
    id text NOT NULL,
    view_name text NOT NULL,
    position bigint NOT NULL,
    generation bigint NOT NULL,
    taken_at timestamptz NOT NULL,
    row_count bigint NOT NULL,
    byte_count bigint NOT NULL,
    sha256 text NOT NULL,
    format_version text NOT NULL,
    CONSTRAINT view_checkpoints_pkey PRIMARY KEY (id)
);
CREATE INDEX view_checkpoints_view_position_idx ON view_checkpoints (view_name, position);

CREATE TABLE view_checkpoint_chunks (
    checkpoint_id text NOT NULL,
    seq integer NOT NULL,
    data bytea NOT NULL,
    CONSTRAINT view_checkpoint_chunks_pkey PRIMARY KEY (checkpoint_id, seq)
);
