-- development_catalog v1: the skill catalog per organization, for search and validation.
CREATE TABLE skills (
    skill_id        uuid        PRIMARY KEY,
    organization_id uuid        NOT NULL,
    name            text        NOT NULL,
    description     text        NOT NULL,
    aliases         text[]      NOT NULL,
    esco_uri        text,
    version         bigint      NOT NULL,
    created_at      timestamptz NOT NULL
);
CREATE INDEX skills_org_name_idx ON skills (organization_id, lower(name));
