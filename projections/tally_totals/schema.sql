-- tally_totals v1: one row per tally. Created inside the projection's schema (rm_tally_totals);
-- changing it means bumping the projection's version, which rebuilds from the event store.
CREATE TABLE tallies (
    tally_id   uuid        PRIMARY KEY,
    tenant_id  uuid,
    name       text        NOT NULL DEFAULT '',
    total      bigint      NOT NULL DEFAULT 0,
    additions  integer     NOT NULL DEFAULT 0,
    status     text        NOT NULL DEFAULT 'open',
    -- Stream version last applied: what `?min_version=` waits for.
    version    bigint      NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX tallies_tenant_idx ON tallies (tenant_id);
