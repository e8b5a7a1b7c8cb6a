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
    -- The moment the row was written (not the sealing transaction's start).
    sealed_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (chain_id, seq)
);

-- A chain's head is its highest seal. Heads recorded over time (at most one a minute per
-- chain): what an auditor compares an export or a verification with, and what shows a
-- truncated tail (a checkpoint whose seal is gone).
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
