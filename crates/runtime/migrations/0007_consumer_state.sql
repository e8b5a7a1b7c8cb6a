-- The consumer runtime's tables (ADR 0004; owned here since ADR 0011). Databases migrated
-- before owners already hold them (from the event store's old 0002), hence IF NOT EXISTS.

-- Events a consumer gave up on after its retries (single-node mode's dead-letter "topic").
CREATE TABLE IF NOT EXISTS dead_letters (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    consumer        text        NOT NULL,
    event_id        uuid        NOT NULL,
    global_position bigint      NOT NULL,
    event_type      text        NOT NULL,
    error           text        NOT NULL,
    failed_at       timestamptz NOT NULL DEFAULT now()
);

-- Consumers fed by the in-process transport (single-node mode): last position handled.
CREATE TABLE IF NOT EXISTS consumer_checkpoints (
    name            text        PRIMARY KEY,
    global_position bigint      NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Projection bookkeeping for `trellis projections status`. Each projection's tables, and the
-- per-stream guard that makes it idempotent, live in its own schema `rm_<name>` (ADR 0004).
CREATE TABLE IF NOT EXISTS projection_state (
    projection      text        PRIMARY KEY,
    version         integer     NOT NULL,
    state           text        NOT NULL DEFAULT 'live',
    events_applied  bigint      NOT NULL DEFAULT 0,
    last_position   bigint,
    last_event_at   timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
