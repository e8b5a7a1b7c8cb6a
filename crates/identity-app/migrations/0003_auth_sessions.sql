-- Refresh-token sessions (ADR 0006). Not event-sourced: a session is short-lived security
-- state, not a domain fact, and tokens must be revocable in place.
CREATE TABLE auth_sessions (
    -- SHA-256 of the opaque refresh token; the token itself is never stored.
    token_hash      bytea       PRIMARY KEY,
    -- All tokens rotated from one login share a family; reuse of a rotated token revokes it.
    family_id       uuid        NOT NULL,
    user_id         uuid        NOT NULL,
    organization_id uuid        NOT NULL,
    issued_at       timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    -- Set when this token was exchanged for a new one.
    rotated_at      timestamptz,
    -- Set when the family was revoked (logout, reuse, deactivation).
    revoked_at      timestamptz
);
CREATE INDEX auth_sessions_family_idx ON auth_sessions (family_id);
CREATE INDEX auth_sessions_user_idx ON auth_sessions (user_id);
