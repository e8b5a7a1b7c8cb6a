-- The event store: one append-only table is the system of record (SPEC §2, ADR 0001).

CREATE TABLE events (
    -- Unique, increasing within a transaction; the checkpoint clients keep.
    global_position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The writing transaction. $all is read in (transaction_id, global_position) order and
    -- only below the oldest running transaction, so a late commit is never skipped.
    transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id(),
    event_id        uuid        NOT NULL,
    stream_id       text        NOT NULL,
    stream_version  bigint      NOT NULL CHECK (stream_version >= 1),
    event_type      text        NOT NULL,
    schema_version  integer     NOT NULL CHECK (schema_version >= 1),
    payload         jsonb       NOT NULL,
    metadata        jsonb       NOT NULL,
    -- Copied out of metadata so per-organization audits can use an index.
    tenant_id       uuid,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, stream_version),
    CONSTRAINT events_event_id_key UNIQUE (event_id)
);

CREATE INDEX events_commit_order_idx ON events (transaction_id, global_position);

-- First result of every command applied with an idempotency key.
CREATE TABLE idempotency_keys (
    key           text        PRIMARY KEY,
    stream_id     text        NOT NULL,
    first_version bigint      NOT NULL,
    last_version  bigint      NOT NULL,
    event_ids     uuid[]      NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
