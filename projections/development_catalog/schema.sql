-- development_catalog v1: the skill catalog per organization, for search and validation.
CREATE TABLE skills (
    skill_id        uuid        PRIMARY KEY,
    organization_id uuid        NOT NULL,
    name            text        NOT NULL,
    description     text        NOT NULL,
    aliases         text[]      NOT NULL,
    esco_uri        text,
    version         bigint      NOT NULL,
    created_at      timestamptz NOT NULL,
    -- The name as full-text terms: the content atomizer links concepts to skills by it.
    name_search     tsvector    GENERATED ALWAYS AS (to_tsvector('english', name)) STORED
);
CREATE INDEX skills_org_name_idx ON skills (organization_id, lower(name));
CREATE INDEX skills_name_search_idx ON skills USING gin (name_search);

CREATE TABLE resources (
    resource_id      uuid        PRIMARY KEY,
    organization_id  uuid        NOT NULL,
    title            text        NOT NULL,
    description      text        NOT NULL,
    url              text,
    kind             text        NOT NULL,
    duration_minutes integer     NOT NULL,
    difficulty       smallint    NOT NULL,
    -- [{skill_id, level}] as published.
    skills           jsonb       NOT NULL,
    rating_sum       integer     NOT NULL DEFAULT 0,
    rating_count     integer     NOT NULL DEFAULT 0,
    version          bigint      NOT NULL,
    created_at       timestamptz NOT NULL
);
CREATE INDEX resources_org_idx ON resources (organization_id);

-- Latest rating per user, so a changed rating replaces the old one in the sums.
CREATE TABLE resource_ratings (
    resource_id uuid     NOT NULL,
    user_id     uuid     NOT NULL,
    rating      smallint NOT NULL,
    PRIMARY KEY (resource_id, user_id)
);
