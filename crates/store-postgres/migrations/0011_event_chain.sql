-- Tamper evidence (ADR 0016, docs/auditing.md): every event of the log is sealed into its
-- organization's hash chain shortly after it commits. A link is SHA-256 over the previous
-- link and the canonical encoding of the stored event (`chain::canonical`), so a changed,
-- deleted, inserted or reordered event breaks the chain from its position on.

-- One row per sealed event: its place in its organization's chain (nil uuid: events without
-- an organization) and the link. No foreign key to `events`: a deleted event must leave its
-- seal behind to be detected.
CREATE TABLE IF NOT EXISTS event_chain (
    chain_id        uuid        NOT NULL,
    seq             bigint      NOT NULL CHECK (seq >= 1),
    global_position bigint      NOT NULL UNIQUE,
    link            bytea       NOT NULL,
    sealed_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (chain_id, seq)
);

-- Each chain's head: the last seal.
CREATE TABLE IF NOT EXISTS event_chain_heads (
    chain_id        uuid        PRIMARY KEY,
    seq             bigint      NOT NULL,
    global_position bigint      NOT NULL,
    link            bytea       NOT NULL,
    sealed_at       timestamptz NOT NULL
);

-- Heads recorded over time (at most one a minute per chain): what an auditor compares an
-- export or a verification with, and what shows a truncated tail.
CREATE TABLE IF NOT EXISTS event_chain_checkpoints (
    chain_id        uuid        NOT NULL,
    seq             bigint      NOT NULL,
    global_position bigint      NOT NULL,
    link            bytea       NOT NULL,
    at              timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (chain_id, seq)
);

-- Where the sealer is in `$all` (commit order). One row.
CREATE TABLE IF NOT EXISTS event_chain_cursor (
    only_row        boolean     PRIMARY KEY DEFAULT true CHECK (only_row),
    transaction_id  xid8        NOT NULL,
    global_position bigint      NOT NULL
);

-- Correlation chains for audits (`GET /v1/audit/correlations/{id}`): every event one request
-- caused, per organization.
CREATE INDEX IF NOT EXISTS events_correlation_idx
    ON events (tenant_id, ((metadata->>'correlation_id')));

-- Replays for audits requested over HTTP (`POST /v1/audit/replays`, docs/auditing.md): the
-- chosen projections rebuilt as of `until` for one organization into `schema`.
CREATE TABLE IF NOT EXISTS audit_replays (
    replay_id       uuid        PRIMARY KEY,
    organization_id uuid        NOT NULL,
    requested_by    uuid        NOT NULL,
    until           text        NOT NULL,
    projections     text[]      NOT NULL,
    schema_name     text        NOT NULL,
    -- running | completed | failed
    status          text        NOT NULL DEFAULT 'running',
    events_read     bigint      NOT NULL DEFAULT 0,
    events_applied  bigint      NOT NULL DEFAULT 0,
    position        bigint      NOT NULL DEFAULT 0,
    end_position    bigint      NOT NULL DEFAULT 0,
    error           text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);
