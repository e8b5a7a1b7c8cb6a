-- identity_users v2 (addresses unique per organization, ADR 0009): organizations and users as the edge needs them (login, authorization,
-- profile). Created in schema rm_identity_users; rebuilt from the store on version change.
CREATE TABLE organizations (
    organization_id uuid        PRIMARY KEY,
    name            text        NOT NULL,
    version         bigint      NOT NULL,
    created_at      timestamptz NOT NULL
);

CREATE TABLE users (
    user_id         uuid        PRIMARY KEY,
    organization_id uuid        NOT NULL,
    email           text        NOT NULL,
    display_name    text        NOT NULL,
    password_hash   text        NOT NULL,
    roles           text[]      NOT NULL,
    manager_id      uuid,
    active          boolean     NOT NULL,
    version         bigint      NOT NULL,
    created_at      timestamptz NOT NULL
);
CREATE INDEX users_org_idx ON users (organization_id);
CREATE INDEX users_email_idx ON users (email);
CREATE INDEX users_manager_idx ON users (manager_id);
