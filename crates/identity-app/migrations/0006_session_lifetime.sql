-- Sessions have an absolute lifetime however often they are refreshed (security review,
-- ADR 0006): the family's end is fixed at login and copied on every rotation.
ALTER TABLE auth_sessions
    ADD COLUMN IF NOT EXISTS family_expires_at timestamptz NOT NULL DEFAULT now() + interval '30 days';
