-- The relay's checkpoint (ADR 0004): the last global position the broker acknowledged.
-- Until migrations had owners (ADR 0011) this file also created the consumers' tables, now
-- the runtime's (crates/runtime/migrations).
CREATE TABLE IF NOT EXISTS relay_checkpoints (
    name            text        PRIMARY KEY,
    global_position bigint      NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
