-- Idempotency-Key of HTTP commands (SPEC §2), scoped per organization and user (anonymous
-- requests such as sign-up use the nil ids): the first response is kept and replayed.
-- Databases migrated before owners (ADR 0011) hold it already (the old 0006), hence IF NOT
-- EXISTS.
CREATE TABLE IF NOT EXISTS http_idempotency (
    organization_id uuid        NOT NULL,
    user_id         uuid        NOT NULL,
    key             text        NOT NULL,
    -- SHA-256 of method, path and body: the same key with another request is refused.
    fingerprint     bytea       NOT NULL,
    -- NULL while the first request is running.
    status          smallint,
    content_type    text,
    location        text,
    body            bytea,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, user_id, key)
);
CREATE INDEX IF NOT EXISTS http_idempotency_created_idx ON http_idempotency (created_at);
